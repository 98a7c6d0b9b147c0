import ArgumentParser
import FastCGI
import Foundation
import LLM
import Logging
import Longhaul
import RedisStore
import Tasks

/// Every setting, resolved from flags, then the environment, then the `.env` file, then defaults.
struct Settings {
    var listener: FastCGIServer.Listener
    var threads: Int
    var app = LonghaulApp.Configuration()
    var llm = LLMConfiguration()
    var caFile: String?
    var table = TaskTable.Configuration()
    var resultTTL: Duration
    /// The Redis store's settings, or `nil` for the in-memory store.
    var redis: RedisTaskStore.Configuration?
    var shutdownGrace: Duration
    var logLevel: Logger.Level
    var accessLog: Bool

    init(command: LonghaulCommand) throws {
        let environment = try Environment(envFile: command.envFile)

        func value(_ flag: String?, _ names: String...) -> String? {
            flag ?? names.lazy.compactMap { environment[$0] }.first
        }
        func integer(_ flag: Int?, _ name: String, default fallback: Int, minimum: Int) throws -> Int {
            let resolved: Int
            if let flag {
                resolved = flag
            } else if let text = environment[name] {
                guard let parsed = Int(text) else { throw ValidationError("\(name)=\(text) is not a whole number.") }
                resolved = parsed
            } else {
                resolved = fallback
            }
            guard resolved >= minimum else { throw ValidationError("\(name) must be at least \(minimum), not \(resolved).") }
            return resolved
        }
        func seconds(_ flag: Double?, _ name: String, default fallback: Double) throws -> Duration {
            let resolved: Double
            if let flag {
                resolved = flag
            } else if let text = environment[name] {
                guard let parsed = Double(text) else { throw ValidationError("\(name)=\(text) is not a number of seconds.") }
                resolved = parsed
            } else {
                resolved = fallback
            }
            guard resolved.isFinite, resolved > 0 else { throw ValidationError("\(name) must be a positive number of seconds.") }
            return .milliseconds(resolved * 1000)
        }

        if let path = value(command.socket, "LONGHAUL_SOCKET"), !path.isEmpty {
            let modeText = value(command.socketMode, "LONGHAUL_SOCKET_MODE") ?? "0660"
            guard let mode = UInt32(modeText, radix: 8), mode <= 0o777 else {
                throw ValidationError("The socket mode \(modeText) is not an octal permission like 0660.")
            }
            listener = .unixSocket(path: path, mode: mode)
        } else {
            listener = .inherited
        }
        threads = try integer(command.threads, "LONGHAUL_THREADS", default: 16, minimum: 1)
        app.basePath = value(command.basePath, "LONGHAUL_BASE_PATH") ?? ""
        app.maxQueryBytes = try integer(command.maxQueryBytes, "LONGHAUL_MAX_QUERY_BYTES", default: 32_768, minimum: 1)

        let providerName = value(command.provider, "LONGHAUL_PROVIDER") ?? "anthropic"
        guard let provider = LLMProvider(rawValue: providerName.lowercased()) else {
            throw ValidationError("Unknown provider \(providerName): use anthropic or openai.")
        }
        llm.provider = provider
        switch provider {
        case .anthropic:
            llm.baseURL = value(command.baseURL, "ANTHROPIC_BASE_URL") ?? "https://api.anthropic.com"
            llm.apiKey = environment["LONGHAUL_API_KEY"] ?? environment["ANTHROPIC_API_KEY"] ?? ""
            llm.model = value(command.model, "LONGHAUL_MODEL") ?? "claude-haiku-4-5"
        case .openAI:
            llm.baseURL = value(command.baseURL, "OPENAI_BASE_URL") ?? "https://api.openai.com"
            llm.apiKey = environment["LONGHAUL_API_KEY"] ?? environment["OPENAI_API_KEY"] ?? ""
            guard let model = value(command.model, "LONGHAUL_MODEL") else {
                throw ValidationError("The openai provider needs --model (or LONGHAUL_MODEL).")
            }
            llm.model = model
        }
        guard llm.baseURL.hasPrefix("http://") || llm.baseURL.hasPrefix("https://") else {
            throw ValidationError("The base URL \(llm.baseURL) must start with http:// or https://.")
        }
        if provider == .anthropic && llm.apiKey.isEmpty {
            throw ValidationError(
                "No API key: set ANTHROPIC_API_KEY in the environment or in the .env file (or LONGHAUL_API_KEY).")
        }
        llm.maxTokens = try integer(command.maxTokens, "LONGHAUL_MAX_TOKENS", default: 1024, minimum: 1)
        llm.maxRetries = try integer(command.maxRetries, "LONGHAUL_MAX_RETRIES", default: 2, minimum: 0)
        llm.connectTimeout = try seconds(command.connectTimeout, "LONGHAUL_CONNECT_TIMEOUT", default: 5)
        llm.idleTimeout = try seconds(command.idleTimeout, "LONGHAUL_IDLE_TIMEOUT", default: 60)
        caFile = value(command.caFile, "LONGHAUL_CA_FILE")

        table.maxInFlight = try integer(command.maxInFlight, "LONGHAUL_MAX_IN_FLIGHT", default: 64, minimum: 1)
        table.maxQueued = try integer(command.maxQueued, "LONGHAUL_MAX_QUEUED", default: 1000, minimum: 0)
        let perClient = try integer(command.maxTasksPerClient, "LONGHAUL_MAX_TASKS_PER_CLIENT", default: 0, minimum: 0)
        table.maxTasksPerClient = perClient == 0 ? nil : perClient
        table.idempotencyWindow = try seconds(command.idempotencyWindow, "LONGHAUL_IDEMPOTENCY_WINDOW", default: 600)
        table.taskTimeout = try seconds(command.taskTimeout, "LONGHAUL_TASK_TIMEOUT", default: 600)
        resultTTL = try seconds(command.resultTTL, "LONGHAUL_RESULT_TTL", default: 3600)
        let storeText = value(command.store, "LONGHAUL_STORE") ?? "memory"
        if storeText == "memory" {
            redis = nil
        } else {
            guard let url = RedisURL(storeText) else {
                throw ValidationError(
                    "The store is neither 'memory', a redis://[:password@]host:port/db URL, nor a "
                        + "redis+sentinel://[:password@]host:port,host:port/MASTER/db URL.")
            }
            var configuration = RedisTaskStore.Configuration(url: url)
            configuration.resultTTL = resultTTL
            configuration.leaseTimeout = try seconds(command.leaseTimeout, "LONGHAUL_LEASE_TIMEOUT", default: 15)
            guard configuration.leaseTimeout >= .seconds(1) else {
                throw ValidationError("The lease timeout must be at least 1 second.")
            }
            // A round trip that hangs must give up well inside the lease, so that retries fit in it too.
            configuration.timeout = min(.seconds(2), configuration.leaseTimeout / 4)
            configuration.maxAttempts = try integer(command.maxAttempts, "LONGHAUL_MAX_ATTEMPTS", default: 3, minimum: 1)
            configuration.waitReplicas = try integer(
                command.redisWaitReplicas, "LONGHAUL_REDIS_WAIT_REPLICAS", default: 0, minimum: 0)
            redis = configuration
        }
        shutdownGrace = try seconds(command.shutdownGrace, "LONGHAUL_SHUTDOWN_GRACE", default: 10)

        let levelName = value(command.logLevel, "LONGHAUL_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("Unknown log level \(levelName).")
        }
        logLevel = level
        switch (value(command.accessLog, "LONGHAUL_ACCESS_LOG") ?? "off").lowercased() {
        case "on", "true", "1", "yes": accessLog = true
        case "off", "false", "0", "no": accessLog = false
        case let other: throw ValidationError("--access-log takes on or off, not \(other).")
        }
    }
}

/// The process environment over the `.env` file: real variables win.
struct Environment {
    private var values: [String: String]

    init(envFile: String?) throws {
        let process = ProcessInfo.processInfo.environment
        values = process
        let path = envFile ?? process["LONGHAUL_ENV_FILE"] ?? ".env"
        guard FileManager.default.fileExists(atPath: path) else {
            if envFile != nil { throw ValidationError("The env file \(path) does not exist.") }
            return
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("The env file \(path) cannot be read as UTF-8 text.")
        }
        for (key, value) in Self.parse(text) where values[key] == nil {
            values[key] = value
        }
    }

    subscript(name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    /// `KEY=VALUE` lines; `#` comments, `export ` prefixes and single or double quotes are allowed.
    static func parse(_ text: String) -> [(String, String)] {
        var pairs: [(String, String)] = []
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            if !key.isEmpty { pairs.append((key, value)) }
        }
        return pairs
    }
}
