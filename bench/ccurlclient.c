/*
 * bench/ccurlclient.c: the floor of parts 2 and 9. A minimal C client that makes N streaming Anthropic Messages
 * calls at once through one libcurl multi handle, driven as Longhaul's curl thread drives its own (epoll on the
 * sockets libcurl asks for, its timer, curl_multi_socket_action for the ready ones) and with the same transfer
 * options (1 KiB receive buffer, 16 KiB upload buffer, HTTP/2 multiplexing over TLS, at most 100 connections per
 * host over HTTP/2). It keeps nothing of a reply but its length and whether it ended with message_stop.
 *
 * What it measures is what any backend on libcurl must hold and spend for the same calls, with no task table, no
 * FastCGI, no nginx: its RSS over idle is the least memory a libcurl client needs for N calls in flight, and its
 * wall time, first call started to last call ended, the least time the mock and the machine allow.
 *
 * Usage: ccurlclient URL N RATE [CA_FILE]
 *   URL      the Messages endpoint (http://127.0.0.1:PORT/v1/messages, or https:// with CA_FILE)
 *   N        calls
 *   RATE     calls started per second (0: all at once; a burst of thousands of connects overflows the mock's
 *            listen queue, and the dropped SYNs come back one to three seconds later)
 * Prints one JSON line: calls, ok, failed, idle_rss_kib, peak_rss_kib (VmHWM), wall_s (first call started to
 * last ended), cpu_s.
 *
 * Build: cc -O2 -o ccurlclient bench/ccurlclient.c -lcurl   (with bench/curl_events.h beside it)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "curl_events.h"

struct call {
    CURL *easy;
    size_t received;
    char tail[16]; /* the last bytes received, to find message_stop across writes */
    int stopped;
};

static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long value = -1;
    size_t n = strlen(field);
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            value = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

static size_t on_body(char *data, size_t size, size_t count, void *user) {
    struct call *c = user;
    size_t n = size * count;
    c->received += n;
    /* message_stop may straddle two writes: search the previous tail and this piece together. */
    char window[16 + 64];
    size_t keep = strlen(c->tail), take = n < 63 ? n : 63;
    memcpy(window, c->tail, keep);
    memcpy(window + keep, data + n - take, take);
    window[keep + take] = 0;
    if (strstr(window, "message_stop") || memmem(data, n, "message_stop", 12)) c->stopped = 1;
    size_t t = n < 15 ? n : 15;
    memcpy(c->tail, data + n - t, t);
    c->tail[t] = 0;
    return n;
}

static void start_call(CURLM *multi, struct call *calls, int i, const char *url, const char *ca,
                       struct curl_slist *headers) {
    char body[256];
    snprintf(body, sizeof body,
             "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"stream\":true,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"bench c client %d\"}]}", i);
    CURL *e = curl_easy_init();
    calls[i].easy = e;
    curl_events_llm_options(e, url, ca);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &calls[i]);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &calls[i]);
    curl_multi_add_handle(multi, e);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s URL N RATE [CA_FILE]\n", argv[0]);
        return 64;
    }
    const char *url = argv[1], *ca = argc > 4 ? argv[4] : NULL;
    int n = atoi(argv[2]);
    double rate = atof(argv[3]);
    if (n <= 0) {
        fprintf(stderr, "N must be positive\n");
        return 64;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    struct curl_events events_state;
    curl_events_init(&events_state, multi);
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 128L);
    if (ca) curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 100L);

    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "content-type: application/json");
    headers = curl_slist_append(headers, "x-api-key: bench");
    headers = curl_slist_append(headers, "anthropic-version: 2023-06-01");
    headers = curl_slist_append(headers, "Expect:");

    struct call *calls = calloc((size_t)n, sizeof *calls);
    long idle_kib = status_kib("VmRSS");
    double start = curl_events_now();
    int started = 0;
    int running = n, ok = 0, failed = 0;
    struct epoll_event events[256];
    double deadline = start + 300; /* bounded: the benchmark waits for it */
    while (ok + failed < n && curl_events_now() < deadline) {
        /* Start the calls due by now (all at once when RATE is 0). */
        while (started < n && (rate <= 0 || curl_events_now() >= start + started / rate)) {
            start_call(multi, calls, started, url, ca, headers);
            started++;
        }
        int ready = epoll_wait(events_state.epoll, events, 256, curl_events_wait_ms(&events_state, started < n ? 1 : 1000));
        for (int i = 0; i < ready; i++) curl_events_ready(multi, &events[i], &running);
        curl_events_timeout(multi, &events_state, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            struct call *c;
            long code = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (m->data.result == CURLE_OK && code == 200 && c->stopped) ok++; else failed++;
            curl_multi_remove_handle(multi, m->easy_handle);
            curl_easy_cleanup(m->easy_handle);
            c->easy = NULL;
        }
    }
    double wall = curl_events_now() - start;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("{\"calls\":%d,\"ok\":%d,\"failed\":%d,\"idle_rss_kib\":%ld,\"peak_rss_kib\":%ld,\"wall_s\":%.3f,"
           "\"cpu_s\":%.3f,\"rate\":%.0f}\n",
           n, ok, failed, idle_kib, status_kib("VmHWM"), wall, cpu, rate);
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    free(calls);
    return failed == 0 && ok == n ? 0 : 1;
}
