#ifndef LONGHAUL_CFASTCGI_SHIM_H
#define LONGHAUL_CFASTCGI_SHIM_H
// fastcgi.h defines FCGI_LISTENSOCK_FILENO (fd 0, where spawn-fcgi hands over the listen socket).
#include <fastcgi.h>
#include <fcgiapp.h>
// The stream writer waits on its connections with epoll (Glibc's Swift module does not export it).
#include <sys/epoll.h>
#endif
