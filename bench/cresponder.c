/*
 * bench/cresponder.c: the smallest useful libfcgi responder, the baseline scripts/bench compares Longhaul with.
 *
 * Like Longhaul it serves the listen socket inherited on fd 0 (spawn-fcgi) with N threads (default 16), each
 * looping on FCGX_Accept_r with its own FCGX_Request, no accept mutex. For every request it reads the
 * parameters it needs and the whole body (so a POST costs it what it costs Longhaul to receive), then answers
 * 200 with a fixed HTML body (argv[2]; argv[3], when given, for DOCUMENT_URI "/") and an explicit Content-Length:
 * scripts/bench passes the bodies Longhaul sent, so that both move the same bytes.
 *
 * With CRESPONDER_LLM_URL set (a Messages endpoint, http://HOST:PORT/v1/messages), every POST also starts one
 * streaming LLM call there before it is answered, as Longhaul's POST /generate starts a task: one curl thread
 * runs the calls as Longhaul's does (epoll on the sockets libcurl asks for, its timer, an eventfd for new calls,
 * curl_multi_socket_action for the ready ones, the same transfer options) and throws the replies away. That is
 * the floor of "POST /generate with tasks running": what the request and the call cost without anything else.
 *
 * Build: cc -O2 -pthread -o cresponder bench/cresponder.c -lfcgi -lcurl   (with bench/curl_events.h beside it)
 * Run:   spawn-fcgi -n -s SOCKET -M 0666 -- ./cresponder [THREADS] [BODY] [INDEX_BODY]
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "curl_events.h"

static const char *body = "<div id=\"result\"><p>Processing...</p></div>\n";
static char head[256];
static size_t head_len, body_len;
static const char *index_body = NULL;
static char index_head[256];
static size_t index_head_len, index_body_len;

/* --- The LLM calls (CRESPONDER_LLM_URL) --- */

static const char *llm_url = NULL;
static struct curl_events llm_events;
static int llm_wake = -1;
static pthread_mutex_t llm_lock = PTHREAD_MUTEX_INITIALIZER;
static long llm_pending = 0; /* calls asked for, not started yet */
static struct curl_slist *llm_headers = NULL;

static size_t llm_discard(char *data, size_t size, size_t count, void *user) {
    (void)data;
    (void)user;
    return size * count;
}

static void llm_start(CURLM *multi) {
    static const char body[] = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"stream\":true,"
                               "\"messages\":[{\"role\":\"user\",\"content\":\"Why is the sky blue?\"}]}";
    CURL *e = curl_easy_init();
    curl_events_llm_options(e, llm_url, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, llm_headers);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, llm_discard);
    curl_multi_add_handle(multi, e);
}

static void *llm_loop(void *arg) {
    CURLM *multi = arg;
    int running = 0;
    struct epoll_event events[256];
    for (;;) {
        int ready = epoll_wait(llm_events.epoll, events, 256, curl_events_wait_ms(&llm_events, -1));
        for (int i = 0; i < ready; i++) {
            if (events[i].data.fd == llm_wake) {
                uint64_t count;
                if (read(llm_wake, &count, sizeof count) != sizeof count) continue;
                pthread_mutex_lock(&llm_lock);
                long start = llm_pending;
                llm_pending = 0;
                pthread_mutex_unlock(&llm_lock);
                while (start-- > 0) llm_start(multi);
                continue;
            }
            curl_events_ready(multi, &events[i], &running);
        }
        curl_events_timeout(multi, &llm_events, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            curl_multi_remove_handle(multi, m->easy_handle);
            curl_easy_cleanup(m->easy_handle);
        }
    }
    return NULL;
}

/* Asks the curl thread for one more call. */
static void llm_request(void) {
    uint64_t one = 1;
    pthread_mutex_lock(&llm_lock);
    llm_pending++;
    pthread_mutex_unlock(&llm_lock);
    if (write(llm_wake, &one, sizeof one) < 0) perror("cresponder: eventfd");
}

/* --- Requests --- */

static void *serve(void *arg) {
    (void)arg;
    FCGX_Request request;
    char buf[8192];
    if (FCGX_InitRequest(&request, 0, 0) != 0) return NULL;
    while (FCGX_Accept_r(&request) >= 0) {
        /* Look at what a real responder looks at, then drain the body. */
        const char *method = FCGX_GetParam("REQUEST_METHOD", request.envp);
        (void)FCGX_GetParam("QUERY_STRING", request.envp);
        const char *uri = FCGX_GetParam("DOCUMENT_URI", request.envp);
        while (FCGX_GetStr(buf, sizeof buf, request.in) > 0) {
        }
        if (llm_url != NULL && method != NULL && strcmp(method, "POST") == 0) llm_request();
        int is_index = index_body != NULL && uri != NULL && strcmp(uri, "/") == 0;
        FCGX_PutStr(is_index ? index_head : head, (int)(is_index ? index_head_len : head_len), request.out);
        if (method == NULL || strcmp(method, "HEAD") != 0) {
            FCGX_PutStr(is_index ? index_body : body, (int)(is_index ? index_body_len : body_len), request.out);
        }
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 16;
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "usage: %s [THREADS 1-1024] [BODY] [INDEX_BODY]\n", argv[0]);
        return 64;
    }
    if (argc > 2) body = argv[2];
    body_len = strlen(body);
    head_len = (size_t)snprintf(head, sizeof head,
                                "Status: 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                                "Cache-Control: no-store\r\nContent-Length: %zu\r\n\r\n",
                                body_len);
    if (argc > 3) {
        index_body = argv[3];
        index_body_len = strlen(index_body);
        index_head_len = (size_t)snprintf(index_head, sizeof index_head,
                                          "Status: 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                                          "Cache-Control: no-store\r\nContent-Length: %zu\r\n\r\n",
                                          index_body_len);
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "cresponder: FCGX_Init failed\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    llm_url = getenv("CRESPONDER_LLM_URL");
    if (llm_url != NULL && *llm_url != 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        llm_headers = curl_slist_append(llm_headers, "content-type: application/json");
        llm_headers = curl_slist_append(llm_headers, "x-api-key: bench");
        llm_headers = curl_slist_append(llm_headers, "anthropic-version: 2023-06-01");
        llm_headers = curl_slist_append(llm_headers, "Expect:");
        CURLM *multi = curl_multi_init();
        curl_events_init(&llm_events, multi);
        llm_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = llm_wake};
        epoll_ctl(llm_events.epoll, EPOLL_CTL_ADD, llm_wake, &ev);
        pthread_t curl_thread;
        if (pthread_create(&curl_thread, NULL, llm_loop, multi) != 0) {
            fprintf(stderr, "cresponder: pthread_create failed\n");
            return 1;
        }
        fprintf(stderr, "cresponder: every POST starts an LLM call to %s\n", llm_url);
    } else {
        llm_url = NULL;
    }
    /* FCGX_Init's own SIGTERM handler only sets a flag: restore the default so that `kill` stops us. */
    signal(SIGTERM, SIG_DFL);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    for (int i = 0; i < threads; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&ids[i], &attr, serve, NULL) != 0) {
            fprintf(stderr, "cresponder: pthread_create failed\n");
            return 1;
        }
        pthread_attr_destroy(&attr);
    }
    fprintf(stderr, "cresponder: %d threads, %zu-byte body, %zu-byte index body\n", threads, body_len,
            index_body != NULL ? index_body_len : body_len);
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    return 0;
}
