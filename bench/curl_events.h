/*
 * bench/curl_events.h: libcurl's multi interface driven as Longhaul's curl thread drives it, for the benchmark's C
 * floors (bench/ccurlclient.c, bench/cresponder.c): epoll on the sockets libcurl asks for
 * (CURLMOPT_SOCKETFUNCTION), its timer (CURLMOPT_TIMERFUNCTION), and curl_multi_socket_action for the ready
 * sockets only; plus the transfer options Longhaul sets on every LLM call. Header-only: each program is one file.
 */
#ifndef LONGHAUL_BENCH_CURL_EVENTS_H
#define LONGHAUL_BENCH_CURL_EVENTS_H

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

struct curl_events {
    int epoll;     /* the sockets libcurl watches (and whatever else the program adds) */
    double timer;  /* libcurl's timer, absolute (curl_events_now()); -1: none */
};

static double curl_events_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int curl_events_on_socket(CURL *easy, curl_socket_t fd, int what, void *user, void *socket_user) {
    (void)easy;
    (void)socket_user;
    struct curl_events *ce = user;
    struct epoll_event ev = {0};
    ev.data.fd = fd;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(ce->epoll, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (epoll_ctl(ce->epoll, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
        epoll_ctl(ce->epoll, EPOLL_CTL_ADD, fd, &ev);
    }
    return 0;
}

static int curl_events_on_timer(CURLM *multi, long ms, void *user) {
    (void)multi;
    struct curl_events *ce = user;
    ce->timer = ms < 0 ? -1 : curl_events_now() + ms / 1000.0;
    return 0;
}

/* Creates the epoll set and hands libcurl the two callbacks. */
static void curl_events_init(struct curl_events *ce, CURLM *multi) {
    ce->epoll = epoll_create1(EPOLL_CLOEXEC);
    ce->timer = -1;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, curl_events_on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, ce);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, curl_events_on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, ce);
}

/* How long epoll_wait may sleep: until libcurl's timer, at most `longest` ms (-1: no limit). */
static int curl_events_wait_ms(const struct curl_events *ce, int longest) {
    if (ce->timer < 0) return longest;
    double left = (ce->timer - curl_events_now()) * 1000;
    int ms = left <= 0 ? 0 : (int)left + 1;
    return longest >= 0 && longest < ms ? longest : ms;
}

/* Hands one ready socket to libcurl. */
static void curl_events_ready(CURLM *multi, const struct epoll_event *ev, int *running) {
    int mask = (ev->events & EPOLLIN ? CURL_CSELECT_IN : 0) | (ev->events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
               (ev->events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(multi, ev->data.fd, mask, running);
}

/* Fires libcurl's timer when it is due, also while sockets keep the loop busy (it drives connects, time-outs
 * and the transfers libcurl keeps pending). */
static void curl_events_timeout(CURLM *multi, struct curl_events *ce, int *running) {
    if (ce->timer >= 0 && curl_events_now() >= ce->timer) {
        ce->timer = -1;
        curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, running);
    }
}

/* The options Longhaul sets on every LLM call (Sources/Curl/CurlHTTPClient.swift, Transfer.prepare). */
static void curl_events_llm_options(CURL *e, const char *url, const char *ca) {
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    /* Wait for a connection being set up to say whether it multiplexes, over TLS only (over http:// the answer
     * comes with the first response, which would hold every other call until then). */
    if (strncmp(url, "https://", 8) == 0) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 300000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 60000L);
    if (ca) curl_easy_setopt(e, CURLOPT_CAINFO, ca);
}

#endif
