/* bench/sigsuspend_shim.c: preloaded (LD_PRELOAD) into both back ends under valgrind 3.19 by scripts/bench part 8,
   which builds it with: cc -O2 -Wall -shared -fPIC -o RUN_DIR/sigsuspend_shim.so bench/sigsuspend_shim.c */
/* Workaround for valgrind writing into the client's sigsuspend mask
   (PRE(sys_rt_sigsuspend) does VG_(sigdelset)(ARG1, VG_SIGVGKILL)):
   libdispatch passes a `static const sigset_t` in .rodata -> SEGV_ACCERR
   inside valgrind. Copy the mask to a writable stack buffer first. */
#define _GNU_SOURCE
#include <signal.h>
#include <unistd.h>
#include <sys/syscall.h>
int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, (size_t)(_NSIG / 8));
}
