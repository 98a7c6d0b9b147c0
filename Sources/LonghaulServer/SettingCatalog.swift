import FastCGI
import Foundation
import LLM
import Logging
import Longhaul
import RedisStore
import StandardExtensions
import Tasks

/// One setting of `longhaul`: its flag, the environment variables it falls back to, its default and what it does.
///
/// The default is read from the configuration struct that owns it (``Settings`` for the process's own), so the
/// value written on that struct's property is the only place it is set: `--help` and the README's table are made
/// from these entries, and `SettingCatalogTests` fails when the README drifts from them.
struct SettingInfo: Sendable {
    /// The flag without its dashes (`threads` for `--threads`), or `nil` for an environment-only setting.
    let flag: String?
    /// The environment variables read when the flag is absent, in order.
    let environment: [String]
    /// The default as a reader sees it (`16`, `claude-haiku-4-5`, `fd 0`).
    let defaultText: String
    /// One line for `--help`.
    let summary: String
    /// The README's explanation (longer than `summary` where it helps).
    let details: String

    init(
        _ flag: String?, env environment: [String], default defaultText: String, _ summary: String,
        readme: String? = nil
    ) {
        self.flag = flag
        self.environment = environment
        self.defaultText = defaultText
        self.summary = summary
        self.details = readme ?? summary
    }

    /// The help text of the flag: the summary, then where else the value comes from and its default.
    var help: String {
        let defaultPart = defaultText.isEmpty ? "default none" : "default \(defaultText)"
        return "\(summary) (env \(environment.joined(separator: " or ")); \(defaultPart))"
    }
}

/// Every setting, in the order `--help` and the README list them.
enum SettingCatalog {
    private static let server = FastCGIServer.Configuration()
    private static let llm = LLMConfiguration()
    private static let table = TaskTable.Configuration()
    private static let app = LonghaulApp.Configuration()
    private static let process = Settings()
    /// The Redis store's defaults (the URL is only a placeholder: it has none).
    private static let redis = RedisTaskStore.Configuration(url: RedisURL("redis://127.0.0.1:6379/0")!)

    static let apiKey = SettingInfo(
        nil, env: ["ANTHROPIC_API_KEY"], default: "",
        "The API key: environment or `.env` only, never a flag, never logged. `LONGHAUL_API_KEY` overrides it; "
            + "`OPENAI_API_KEY` for the openai provider.")
    static let provider = SettingInfo(
        "provider", env: ["LONGHAUL_PROVIDER"], default: llm.provider.rawValue,
        "LLM provider: anthropic or openai (OpenAI-compatible chat completions).",
        readme: "`anthropic` (Messages API) or `openai` (chat completions: OpenAI, Ollama, vLLM, llama.cpp).")
    static let baseURL = SettingInfo(
        "base-url", env: ["ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"], default: llm.baseURL,
        "The LLM API's base URL.", readme: "The API's base URL (without `/v1`).")
    static let model = SettingInfo("model", env: ["LONGHAUL_MODEL"], default: llm.model, "The model.")
    static let maxTokens = SettingInfo(
        "max-tokens", env: ["LONGHAUL_MAX_TOKENS"], default: "\(llm.maxTokens)", "Most tokens in an answer.",
        readme: "Answer length limit; a truncated answer says so.")
    static let maxRetries = SettingInfo(
        "max-retries", env: ["LONGHAUL_MAX_RETRIES"], default: "\(llm.maxRetries)",
        "Retries of a failed LLM call (429, 5xx, 529, connection errors).",
        readme: "Retries of connection errors, timeouts, 408, 409, 429, 5xx, 529 and an early `overloaded_error`; "
            + "never 400, 401, 403, 404, 413. `retry-after(-ms)` up to 60 s is honoured, else 0.5 s × 2^n (max 8 s) "
            + "less up to 25 % jitter.")
    static let connectTimeout = SettingInfo(
        "connect-timeout", env: ["LONGHAUL_CONNECT_TIMEOUT"], default: seconds(llm.connectTimeout),
        "Seconds allowed to connect to the LLM API.",
        readme: "Seconds to connect (DNS, TCP, TLS) → `connect_timeout`.")
    static let idleTimeout = SettingInfo(
        "idle-timeout", env: ["LONGHAUL_IDLE_TIMEOUT"], default: seconds(llm.idleTimeout),
        "Longest silence from the LLM API, in seconds.",
        readme: "Longest silence from the API, headers included → `idle_timeout`.")
    static let taskTimeout = SettingInfo(
        "task-timeout", env: ["LONGHAUL_TASK_TIMEOUT"], default: seconds(table.taskTimeout),
        "Longest time for a whole task, in seconds.", readme: "Longest whole task → `task_timeout`.")
    static let caFile = SettingInfo(
        "ca-file", env: ["LONGHAUL_CA_FILE"], default: "system",
        "A CA bundle for verifying the LLM API's certificate.",
        readme: "CA bundle used to verify the API's certificate.")
    static let maxInFlight = SettingInfo(
        "max-in-flight", env: ["LONGHAUL_MAX_IN_FLIGHT"], default: "\(table.maxInFlight)",
        "Most tasks running at once in this process.")
    static let maxQueued = SettingInfo(
        "max-queued", env: ["LONGHAUL_MAX_QUEUED"], default: "\(table.maxQueued)",
        "Most tasks waiting for a slot; beyond it new tasks get 503.")
    static let resultTTL = SettingInfo(
        "result-ttl", env: ["LONGHAUL_RESULT_TTL"], default: seconds(process.resultTTL),
        "Seconds a finished task's result is kept.")
    static let maxQueryBytes = SettingInfo(
        "max-query-bytes", env: ["LONGHAUL_MAX_QUERY_BYTES"], default: "\(app.maxQueryBytes)",
        "Longest query accepted, in bytes; longer gets 413.")
    static let socket = SettingInfo(
        "socket", env: ["LONGHAUL_SOCKET"], default: "fd 0",
        "Create and listen on this unix socket instead of using fd 0.",
        readme: "Create this unix socket; without it, serve the socket inherited on fd 0 (spawn-fcgi, systemd).")
    static let socketMode = SettingInfo(
        "socket-mode", env: ["LONGHAUL_SOCKET_MODE"], default: "0" + String(process.socketMode, radix: 8),
        "Permission bits of the socket created by --socket, in octal.")
    static let threads = SettingInfo(
        "threads", env: ["LONGHAUL_THREADS"], default: "\(server.threadCount)", "FastCGI accept threads.",
        readme: "FastCGI accept threads (keep above nginx's upstream keepalive × workers).")
    static let basePath = SettingInfo(
        "base-path", env: ["LONGHAUL_BASE_PATH"], default: app.basePath,
        "The URL prefix the app is mounted under, e.g. /ask.", readme: "Mount the app under a prefix, e.g. `/ask`.")
    static let store = SettingInfo(
        "store", env: ["LONGHAUL_STORE"], default: process.store,
        "Where tasks live: memory, redis://[:password@]host:port/db to share them between processes and machines, "
            + "or redis+sentinel://[:password@]host:port,host:port/MASTER/db to follow Sentinel failovers.",
        readme: "`memory`, `redis://[:password@]host:port/db` to share tasks between processes and machines, or "
            + "`redis+sentinel://[:password@]host:port,host:port/MASTER/db` to follow Sentinel failovers (see below).")
    static let redisWaitReplicas = SettingInfo(
        "redis-wait-replicas", env: ["LONGHAUL_REDIS_WAIT_REPLICAS"], default: "\(redis.waitReplicas)",
        "Redis store: replicas that must have each accepted task and each result before the answer (WAIT); 0 for none.",
        readme: "Redis: replicas that must confirm each new task and each result before the answer (`WAIT`, "
            + "\(seconds(redis.waitTimeout)) s); see the table below.")
    static let leaseTimeout = SettingInfo(
        "lease-timeout", env: ["LONGHAUL_LEASE_TIMEOUT"], default: seconds(redis.leaseTimeout),
        "Redis store: seconds a process may go silent before another takes its running tasks over (at least 1).",
        readme: "Redis: seconds a process may stay silent before another takes its running tasks over (at least 1); "
            + "a process that cannot renew stops its runs after \(Int(table.selfFenceFraction * 100)) % of it. "
            + "Redis commands time out after a quarter of it (at most \(seconds(redis.timeout)) s).")
    static let maxAttempts = SettingInfo(
        "max-attempts", env: ["LONGHAUL_MAX_ATTEMPTS"], default: "\(redis.maxAttempts)",
        "Redis store: most runs of a task whose process keeps dying before it fails.",
        readme: "Redis: runs of a task whose process keeps dying before it fails as `worker_lost`.")
    static let maxTasksPerClient = SettingInfo(
        "max-tasks-per-client", env: ["LONGHAUL_MAX_TASKS_PER_CLIENT"],
        default: table.maxTasksPerClient.map { "\($0)" } ?? "0 (off)",
        "Most tasks one client address may have queued or running; 0 for no limit.",
        readme: "Tasks one client address may have queued or running; beyond, 429 `too_many_tasks`. Set it (e.g. 5) "
            + "on a public page.")
    static let idempotencyWindow = SettingInfo(
        "idempotency-window", env: ["LONGHAUL_IDEMPOTENCY_WINDOW"], default: seconds(table.idempotencyWindow),
        "Seconds an Idempotency-Key (or the page's form token) is remembered.",
        readme: "Seconds an `Idempotency-Key` (API) or the page's form token is remembered.")
    static let accessLog = SettingInfo(
        "access-log", env: ["LONGHAUL_ACCESS_LOG"], default: app.operations.accessLog ? "on" : "off",
        "Log one line per request (route, status, duration, task id) at info: on or off.",
        readme: "One log line per request (method, path, status, duration, task id) at `info` (off by default, like "
            + "php-fpm's access.log: nginx logs every request already, and the line costs about as much CPU as the "
            + "request).")
    static let shutdownGrace = SettingInfo(
        "shutdown-grace", env: ["LONGHAUL_SHUTDOWN_GRACE"], default: seconds(process.shutdownGrace),
        "Seconds running tasks get to finish on SIGTERM before they are cancelled.")
    static let logLevel = SettingInfo(
        "log-level", env: ["LONGHAUL_LOG_LEVEL"], default: process.logLevel.rawValue,
        "trace, debug, info, notice, warning, error or critical; logs go to stderr.")
    static let envFile = SettingInfo(
        "env-file", env: ["LONGHAUL_ENV_FILE"], default: process.envFile,
        "A file of KEY=VALUE lines read for settings not in the environment.",
        readme: "A file of `KEY=VALUE` lines read for settings not in the environment.")

    /// Every setting, in the README's order.
    static let all: [SettingInfo] = [
        apiKey, provider, baseURL, model, maxTokens, maxRetries, connectTimeout, idleTimeout, taskTimeout, caFile,
        maxInFlight, maxQueued, resultTTL, maxQueryBytes, socket, socketMode, threads, basePath, store,
        redisWaitReplicas, leaseTimeout, maxAttempts, maxTasksPerClient, idempotencyWindow, accessLog, shutdownGrace,
        logLevel, envFile,
    ]

    /// The README's configuration table, made from ``all``.
    static var markdownTable: String {
        var lines = ["| Flag | Environment | Default | |", "|---|---|---|---|"]
        for setting in all {
            let flag = setting.flag.map { "`--\($0)`" } ?? "(none)"
            let environment = setting.environment.map { "`\($0)`" }.joined(separator: " / ")
            let defaultText = setting.defaultText.isEmpty ? " " : " `\(setting.defaultText)` "
            lines.append("| \(flag) | \(environment) |\(defaultText)| \(setting.details) |")
        }
        return lines.joined(separator: "\n")
    }

    /// A duration as whole seconds when it is whole (`600`), else with a fraction (`0.5`).
    static func seconds(_ duration: Duration) -> String {
        let seconds = duration.timeInterval
        return seconds == seconds.rounded() ? "\(Int64(seconds))" : "\(seconds)"
    }
}
