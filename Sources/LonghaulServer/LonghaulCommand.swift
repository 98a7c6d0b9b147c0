import ArgumentParser
import Curl
import Dispatch
import FastCGI
import Foundation
import LLM
import Logging
import Longhaul
import Tasks

/// `longhaul`: the FastCGI backend. Flags win over environment variables, which win over the `.env` file.
@main
struct LonghaulCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "longhaul",
        abstract: "Longhaul: a FastCGI backend that runs slow LLM calls as tasks for pages behind nginx.",
        discussion: """
            Without --socket, longhaul serves the listen socket it inherits on file descriptor 0 (spawn-fcgi, systemd \
            socket units). Every option falls back to the environment variable named in its help, then to a .env \
            file, then to its default. ANTHROPIC_API_KEY (or LONGHAUL_API_KEY) is read only from the environment or \
            the .env file, never from the command line, and is never logged.
            """)

    @Option(help: "Create and listen on this unix socket instead of using fd 0. (env LONGHAUL_SOCKET)")
    var socket: String?

    @Option(help: "Permission bits of the socket created by --socket, in octal. (env LONGHAUL_SOCKET_MODE; default 0660)")
    var socketMode: String?

    @Option(help: "FastCGI accept threads. (env LONGHAUL_THREADS; default 16)")
    var threads: Int?

    @Option(help: "The URL prefix the app is mounted under, e.g. /ask. (env LONGHAUL_BASE_PATH; default none)")
    var basePath: String?

    @Option(help: "LLM provider: anthropic or openai (OpenAI-compatible chat completions). (env LONGHAUL_PROVIDER; default anthropic)")
    var provider: String?

    @Option(help: "The LLM API's base URL. (env ANTHROPIC_BASE_URL or OPENAI_BASE_URL; default https://api.anthropic.com)")
    var baseURL: String?

    @Option(help: "The model. (env LONGHAUL_MODEL; default claude-haiku-4-5)")
    var model: String?

    @Option(help: "Most tokens in an answer. (env LONGHAUL_MAX_TOKENS; default 1024)")
    var maxTokens: Int?

    @Option(help: "Retries of a failed LLM call (429, 5xx, 529, connection errors). (env LONGHAUL_MAX_RETRIES; default 2)")
    var maxRetries: Int?

    @Option(help: "Seconds allowed to connect to the LLM API. (env LONGHAUL_CONNECT_TIMEOUT; default 5)")
    var connectTimeout: Double?

    @Option(help: "Longest silence from the LLM API, in seconds. (env LONGHAUL_IDLE_TIMEOUT; default 60)")
    var idleTimeout: Double?

    @Option(help: "Longest time for a whole task, in seconds. (env LONGHAUL_TASK_TIMEOUT; default 600)")
    var taskTimeout: Double?

    @Option(help: "A CA bundle for verifying the LLM API's certificate. (env LONGHAUL_CA_FILE; default the system's)")
    var caFile: String?

    @Option(help: "Most LLM calls in flight at once. (env LONGHAUL_MAX_IN_FLIGHT; default 64)")
    var maxInFlight: Int?

    @Option(help: "Most tasks waiting for a slot; beyond it generate answers 503. (env LONGHAUL_MAX_QUEUED; default 1000)")
    var maxQueued: Int?

    @Option(help: "Most tasks one client address may have queued or running; 0 for no limit. (env LONGHAUL_MAX_TASKS_PER_CLIENT; default 0)")
    var maxTasksPerClient: Int?

    @Option(help: "Seconds an Idempotency-Key (or the page's form token) is remembered. (env LONGHAUL_IDEMPOTENCY_WINDOW; default 600)")
    var idempotencyWindow: Double?

    @Option(help: "Seconds a finished task's result is kept. (env LONGHAUL_RESULT_TTL; default 3600)")
    var resultTTL: Double?

    @Option(help: "Longest query accepted, in bytes. (env LONGHAUL_MAX_QUERY_BYTES; default 32768)")
    var maxQueryBytes: Int?

    @Option(help: "Where tasks live: memory, redis://[:password@]host:port/db to share them between processes and machines, or redis+sentinel://[:password@]host:port,host:port/MASTER/db to follow Sentinel failovers. (env LONGHAUL_STORE; default memory)")
    var store: String?

    @Option(help: "Redis store: replicas that must have each accepted task and each result before the answer (WAIT); 0 for none. (env LONGHAUL_REDIS_WAIT_REPLICAS; default 0)")
    var redisWaitReplicas: Int?

    @Option(help: "Redis store: seconds a process may go silent before another takes its running tasks over. (env LONGHAUL_LEASE_TIMEOUT; default 15)")
    var leaseTimeout: Double?

    @Option(help: "Redis store: most runs of a task whose process keeps dying before it fails. (env LONGHAUL_MAX_ATTEMPTS; default 3)")
    var maxAttempts: Int?

    @Option(help: "Seconds running tasks get to finish on SIGTERM before they are cancelled. (env LONGHAUL_SHUTDOWN_GRACE; default 10)")
    var shutdownGrace: Double?

    @Option(help: "Log one line per request (route, status, duration, task id) at info: on or off; nginx keeps its own access log. (env LONGHAUL_ACCESS_LOG; default off)")
    var accessLog: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical. (env LONGHAUL_LOG_LEVEL; default info)")
    var logLevel: String?

    @Option(help: "A file of KEY=VALUE lines read for settings not in the environment. (env LONGHAUL_ENV_FILE; default .env)")
    var envFile: String?

    func run() async throws {
        let settings = try Settings(command: self)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = settings.logLevel
            return handler
        }
        let logger = Logger(label: "longhaul")
        try await Server(settings: settings, logger: logger).run()
    }
}
