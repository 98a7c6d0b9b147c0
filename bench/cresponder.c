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
 * With CRESPONDER_TASKS=1 it also does the work of Longhaul's task routes, as lean as C does it (the floor of
 * part 8's instructions per /check): POST /generate (form field `query`) stores a task under a random 22-character
 * id (getrandom, base64url) in a table under one mutex and answers its pending fragment; GET /check?task_id=ID
 * finds the id in the query string (decoding %XX and +), checks it, looks it up under the mutex and renders the
 * pending fragment byte for byte as Longhaul does (the id, input and output HTML-escaped, the creation and current
 * times in RFC 3339, the elapsed time) into one stack buffer, then writes the head with its Content-Length and the
 * body. An unknown id gets a 404. The task never finishes: /check always shows it pending.
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
#include <sys/random.h>
#include <time.h>
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

/* --- The task routes (CRESPONDER_TASKS=1) --- */

#define TASK_SLOTS 4096 /* a power of two; the bench stores a handful */
#define ID_LEN 22       /* 16 random bytes in base64url, no padding */

struct task {
    char id[ID_LEN];
    int used;
    char *input;
    size_t input_len;
    char *output; /* the text streamed so far: always empty here */
    size_t output_len;
    struct timespec created;
};

static int tasks_enabled = 0;
static struct task task_slots[TASK_SLOTS];
static pthread_mutex_t task_lock = PTHREAD_MUTEX_INITIALIZER;

/* FNV-1a over the id's text: ids are random, any mixing will do. */
static size_t task_slot(const char *id) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < ID_LEN; i++) h = (h ^ (unsigned char)id[i]) * 1099511628211ULL;
    return (size_t)(h & (TASK_SLOTS - 1));
}

/* The task with this id, or NULL (the caller holds task_lock). */
static struct task *task_find(const char *id) {
    for (size_t slot = task_slot(id), probes = 0; probes < TASK_SLOTS; slot = (slot + 1) & (TASK_SLOTS - 1), probes++) {
        struct task *t = &task_slots[slot];
        if (!t->used) return NULL;
        if (memcmp(t->id, id, ID_LEN) == 0) return t;
    }
    return NULL;
}

static int id_byte_ok(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes a form value (%XX, + as space) from [s, end) into out (at most cap bytes); its length, or -1. */
static long form_decode(const char *s, const char *end, char *out, size_t cap) {
    size_t n = 0;
    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (end - s < 3 || (hi = hex_value((unsigned char)s[1])) < 0 || (lo = hex_value((unsigned char)s[2])) < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            s += 2;
        }
        if (n == cap) return -1;
        out[n++] = (char)c;
    }
    return (long)n;
}

/* The first value of `name` in a query string or form body, decoded into out; its length, or -1 when absent. */
static long form_value(const char *query, size_t query_len, const char *name, char *out, size_t cap) {
    size_t name_len = strlen(name);
    const char *p = query, *end = query + query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *field_end = amp ? amp : end;
        if ((size_t)(field_end - p) > name_len && p[name_len] == '=' && memcmp(p, name, name_len) == 0) {
            const char *value = p + name_len + 1;
            if (memchr(value, '%', (size_t)(field_end - value)) == NULL &&
                memchr(value, '+', (size_t)(field_end - value)) == NULL) {
                size_t n = (size_t)(field_end - value);
                if (n > cap) return -1;
                memcpy(out, value, n);
                return (long)n;
            }
            return form_decode(value, field_end, out, cap);
        }
        p = field_end + 1;
    }
    return -1;
}

/* An output buffer on the stack: appends never overflow (they stop at the end and `full` says so). */
struct out {
    char *p;
    size_t n, cap;
    int full;
};

static void put(struct out *o, const char *s, size_t n) {
    if (o->cap - o->n < n) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

#define PUT_LITERAL(o, s) put((o), (s), sizeof(s) - 1)

/* HTML-escapes & < > " ' : runs without them are copied whole. */
static void put_escaped(struct out *o, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        put(o, s + run, i - run);
        put(o, rep, strlen(rep));
        run = i + 1;
    }
    put(o, s + run, n - run);
}

static void put_uint(struct out *o, unsigned long v) {
    char digits[24];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    put(o, digits + i, sizeof digits - i);
}

/* 2026-12-04T15:28:30.860Z: the same civil-date arithmetic as Longhaul (no gmtime_r lock, no time zone). */
static void put_rfc3339(struct out *o, const struct timespec *t) {
    unsigned long seconds = (unsigned long)t->tv_sec, ms = (unsigned long)t->tv_nsec / 1000000;
    unsigned long second_of_day = seconds % 86400, shifted = seconds / 86400 + 719468;
    unsigned long era = shifted / 146097, doe = shifted - era * 146097;
    unsigned long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    unsigned long year = yoe + era * 400 + (month <= 2);
    char b[24];
#define TWO(at, v) (b[(at)] = (char)('0' + (v) / 10), b[(at) + 1] = (char)('0' + (v) % 10))
    TWO(0, year / 100);
    TWO(2, year % 100);
    b[4] = '-';
    TWO(5, month);
    b[7] = '-';
    TWO(8, day);
    b[10] = 'T';
    TWO(11, second_of_day / 3600);
    b[13] = ':';
    TWO(14, second_of_day / 60 % 60);
    b[16] = ':';
    TWO(17, second_of_day % 60);
    b[19] = '.';
    b[20] = (char)('0' + ms / 100);
    TWO(21, ms % 100);
    b[23] = 'Z';
#undef TWO
    put(o, b, sizeof b);
}

/* Longhaul's pending fragment for a task, byte for byte (base path empty). The caller holds task_lock. */
static void render_pending(struct out *o, const struct task *t) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* The id is base64url (checked on the way in): escaping leaves it as it is. */
    const char *id = t->id;
    PUT_LITERAL(o, "<div id=\"task-");
    put(o, id, ID_LEN);
    PUT_LITERAL(o, "\" class=\"task task-pending\" aria-busy=\"true\" data-created-at=\"");
    put_rfc3339(o, &t->created);
    PUT_LITERAL(o, "\" data-server-time=\"");
    put_rfc3339(o, &now);
    PUT_LITERAL(o, "\" hx-get=\"/check?task_id=");
    put(o, id, ID_LEN);
    PUT_LITERAL(o, "\" hx-trigger=\"sse:done, sse:reset, every 1s\" hx-swap=\"outerHTML\" hx-ext=\"sse\" "
                   "sse-connect=\"/stream?task_id=");
    put(o, id, ID_LEN);
    PUT_LITERAL(o, "&from=");
    size_t scalars = 0;
    for (size_t i = 0; i < t->output_len; i++) scalars += ((unsigned char)t->output[i] & 0xC0) != 0x80;
    put_uint(o, scalars);
    PUT_LITERAL(o, "\" sse-close=\"done\">\n<p class=\"query\"><span class=\"visually-hidden\">Question: </span>");
    put_escaped(o, t->input, t->input_len);
    PUT_LITERAL(o, "</p>\n<p class=\"status\">Processing... <span class=\"elapsed\" role=\"timer\">");
    long elapsed = (long)(now.tv_sec - t->created.tv_sec) - (now.tv_nsec < t->created.tv_nsec);
    unsigned long seconds = elapsed > 0 ? (unsigned long)elapsed : 0;
    if (seconds >= 60) {
        put_uint(o, seconds / 60);
        if (seconds % 60 < 10) PUT_LITERAL(o, " min 0");
        else PUT_LITERAL(o, " min ");
        put_uint(o, seconds % 60);
    } else {
        put_uint(o, seconds);
    }
    PUT_LITERAL(o, " s</span></p>\n<div class=\"result-text partial\" sse-swap=\"delta\" hx-swap=\"beforeend\">");
    put_escaped(o, t->output, t->output_len);
    PUT_LITERAL(o, "</div>\n<form class=\"cancel\" method=\"post\" action=\"/cancel?task_id=");
    put(o, id, ID_LEN);
    PUT_LITERAL(o, "\" hx-post=\"/cancel?task_id=");
    put(o, id, ID_LEN);
    PUT_LITERAL(o, "\" hx-target=\"#task-");
    put(o, id, ID_LEN);
    PUT_LITERAL(o, "\" hx-swap=\"outerHTML\">\n<button type=\"submit\">Cancel</button>\n</form>\n</div>");
}

/* Writes a whole answer: status line, the HTML headers, Content-Length, the body. */
static void answer(FCGX_Request *request, const char *status, const char *body_bytes, size_t n, int head_only) {
    char h[192];
    struct out o = {h, 0, sizeof h, 0};
    put(&o, status, strlen(status));
    PUT_LITERAL(&o, "Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: ");
    put_uint(&o, n);
    PUT_LITERAL(&o, "\r\n\r\n");
    FCGX_PutStr(h, (int)o.n, request->out);
    if (!head_only) FCGX_PutStr(body_bytes, (int)n, request->out);
}

static const char unknown_task[] = "<div class=\"task task-unknown\" role=\"alert\">\n<p>This task is unknown or has "
                                   "expired.</p>\n</div>";

/* GET /check?task_id=ID: the task's pending fragment, or a 404. */
static void check_route(FCGX_Request *request, const char *query, int head_only) {
    char id[ID_LEN + 1];
    long n = query ? form_value(query, strlen(query), "task_id", id, sizeof id) : -1;
    int valid = n == ID_LEN;
    for (long i = 0; valid && i < n; i++) valid = id_byte_ok((unsigned char)id[i]);
    char page[4096];
    struct out o = {page, 0, sizeof page, 0};
    pthread_mutex_lock(&task_lock);
    const struct task *t = valid ? task_find(id) : NULL;
    if (t != NULL) render_pending(&o, t);
    pthread_mutex_unlock(&task_lock);
    if (t == NULL || o.full) {
        answer(request, "Status: 404 Not Found\r\n", unknown_task, sizeof unknown_task - 1, head_only);
        return;
    }
    answer(request, "Status: 200 OK\r\n", page, o.n, head_only);
}

/* POST /generate with the form field `query`: stores a new task and answers its pending fragment. */
static void generate_route(FCGX_Request *request, const char *form, size_t form_len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char input[4096];
    long input_len = form_value(form, form_len, "query", input, sizeof input);
    unsigned char raw[16];
    if (input_len <= 0 || getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        static const char bad[] = "<p class=\"error\">No query provided</p>";
        answer(request, "Status: 400 Bad Request\r\n", bad, sizeof bad - 1, 0);
        return;
    }
    struct task fresh = {.used = 1, .output = "", .output_len = 0};
    /* 16 bytes = 128 bits = 21 groups of 6 bits and 2 bits left over: 22 characters. */
    unsigned bits = 0, pending = 0;
    size_t written = 0;
    for (size_t i = 0; i < sizeof raw; i++) {
        pending = (pending << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            fresh.id[written++] = alphabet[(pending >> bits) & 63];
        }
    }
    fresh.id[written++] = alphabet[(pending << (6 - bits)) & 63];
    fresh.input = malloc((size_t)input_len);
    if (fresh.input == NULL) return;
    memcpy(fresh.input, input, (size_t)input_len);
    fresh.input_len = (size_t)input_len;
    clock_gettime(CLOCK_REALTIME, &fresh.created);
    char page[4096];
    struct out o = {page, 0, sizeof page, 0};
    pthread_mutex_lock(&task_lock);
    size_t slot = task_slot(fresh.id);
    while (task_slots[slot].used) slot = (slot + 1) & (TASK_SLOTS - 1);
    task_slots[slot] = fresh;
    render_pending(&o, &task_slots[slot]);
    pthread_mutex_unlock(&task_lock);
    answer(request, "Status: 200 OK\r\n", page, o.n, 0);
}

/* --- Requests --- */

static void *serve(void *arg) {
    (void)arg;
    FCGX_Request request;
    char buf[8192];
    if (FCGX_InitRequest(&request, 0, 0) != 0) return NULL;
    while (FCGX_Accept_r(&request) >= 0) {
        /* Look at what a real responder looks at, then drain the body (keeping its start for the task routes). */
        const char *method = FCGX_GetParam("REQUEST_METHOD", request.envp);
        const char *query = FCGX_GetParam("QUERY_STRING", request.envp);
        const char *uri = FCGX_GetParam("DOCUMENT_URI", request.envp);
        int got, kept = 0;
        while ((got = FCGX_GetStr(buf + kept, (int)sizeof buf - kept, request.in)) > 0) {
            if (kept + got < (int)sizeof buf) kept += got;
        }
        if (tasks_enabled && uri != NULL && method != NULL) {
            int head_only = strcmp(method, "HEAD") == 0;
            if (strcmp(uri, "/check") == 0 && (head_only || strcmp(method, "GET") == 0)) {
                check_route(&request, query, head_only);
                FCGX_Finish_r(&request);
                continue;
            }
            if (strcmp(uri, "/generate") == 0 && strcmp(method, "POST") == 0) {
                generate_route(&request, buf, (size_t)kept);
                FCGX_Finish_r(&request);
                continue;
            }
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
    const char *tasks = getenv("CRESPONDER_TASKS");
    tasks_enabled = tasks != NULL && strcmp(tasks, "1") == 0;
    if (tasks_enabled) fprintf(stderr, "cresponder: task routes on (POST /generate, GET /check)\n");
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
