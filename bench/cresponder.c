/*
 * bench/cresponder.c: the smallest useful libfcgi responder, the baseline scripts/bench compares Longhaul with.
 *
 * Like Longhaul it serves the listen socket inherited on fd 0 (spawn-fcgi) with N threads (default 16), each
 * looping on FCGX_Accept_r with its own FCGX_Request, no accept mutex. For every request it reads the
 * parameters it needs and the whole body (so a POST costs it what it costs Longhaul to receive), then answers
 * 200 with a fixed HTML body (argv[2]; argv[3], when given, for DOCUMENT_URI "/") and an explicit Content-Length:
 * scripts/bench passes the bodies Longhaul sent, so that both move the same bytes.
 *
 * Build: cc -O2 -pthread -o cresponder bench/cresponder.c -lfcgi
 * Run:   spawn-fcgi -n -s SOCKET -M 0666 -- ./cresponder [THREADS] [BODY] [INDEX_BODY]
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *body = "<div id=\"result\"><p>Processing...</p></div>\n";
static char head[256];
static size_t head_len, body_len;
static const char *index_body = NULL;
static char index_head[256];
static size_t index_head_len, index_body_len;

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
