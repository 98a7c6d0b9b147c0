import ArgumentParser
import FastCGI
import Foundation
import LLM
import Logging
import Longhaul
import RedisStore
import StandardExtensions
import Tasks

/// Every setting, resolved from flags, then the environment, then the `.env` file, then defaults.
///
/// Each default is written once, on a property: the library's configuration structs for theirs
/// (`FastCGIServer.Configuration`, `TaskTable.Configuration`, `LLMConfiguration`, `RedisTaskStore.Configuration`,
/// `LonghaulApp.Configuration`), and this struct's own properties for the process's. ``SettingCatalog`` reads
/// them for `--help` and the README.
struct Settings {
    var listener: FastCGIServer.Listener = .inherited
    /// Mode of the socket `--socket` creates.
    var socketMode: UInt32 = 0o660
    var threads = FastCGIServer.Configuration().threadCount
    var app = LonghaulApp.Configuration()
    var llm = LLMConfiguration()
    /// The openai provider's base URL when none is given (the anthropic one is `LLMConfiguration`'s).
    var openAIBaseURL = "https://api.openai.com"
    var caFile: String?
    var table = TaskTable.Configuration()
    var resultTTL: Duration = .seconds(3600)
    /// `memory`, or a Redis URL.
    var store = "memory"
    /// The Redis store's settings, or `nil` for the in-memory store.
    var redis: RedisTaskStore.Configuration?
    var shutdownGrace = LonghaulRunner.defaultShutdownGrace
    var logLevel: Logger.Level = .info
    var accessLog: Bool {
        get { app.operations.accessLog }
        set { app.operations.accessLog = newValue }
    }
    /// The `.env` file read when neither `--env-file` nor `LONGHAUL_ENV_FILE` names one.
    var envFile = ".env"

    /// Every default.
    init() {}

    init(command: LonghaulCommand) throws {
        self.init()
        let environment = try Environment(envFile: command.envFile, defaultPath: envFile)

        func value(_ flag: String?, _ setting: SettingInfo) -> String? {
            flag ?? setting.environment.lazy.compactMap { environment[$0] }.first
        }
        func integer(_ flag: Int?, _ setting: SettingInfo, current: Int, minimum: Int) throws -> Int {
            let name = setting.environment[0]
            var resolved = current
            if let flag {
                resolved = flag
            } else if let text = environment[name] {
                guard let parsed = Int(text) else { throw ValidationError("\(name)=\(text) is not a whole number.") }
                resolved = parsed
            }
            guard resolved >= minimum else {
                throw ValidationError("\(name) must be at least \(minimum), not \(resolved).")
            }
            return resolved
        }
        func seconds(_ flag: Double?, _ setting: SettingInfo, current: Duration) throws -> Duration {
            let name = setting.environment[0]
            let resolved: Double
            if let flag {
                resolved = flag
            } else if let text = environment[name] {
                guard let parsed = Double(text) else {
                    throw ValidationError("\(name)=\(text) is not a number of seconds.")
                }
                resolved = parsed
            } else {
                return current
            }
            guard resolved.isFinite, resolved > 0 else {
                throw ValidationError("\(name) must be a positive number of seconds.")
            }
            return .milliseconds(resolved * 1000)
        }

        if let path = value(command.socket, SettingCatalog.socket), !path.isEmpty {
            if let modeText = value(command.socketMode, SettingCatalog.socketMode) {
                guard let mode = UInt32(modeText, radix: 8), mode <= 0o777 else {
                    throw ValidationError("The socket mode \(modeText) is not an octal permission like 0660.")
                }
                socketMode = mode
            }
            listener = .unixSocket(path: path, mode: socketMode)
        }
        threads = try integer(command.threads, SettingCatalog.threads, current: threads, minimum: 1)
        app.basePath = value(command.basePath, SettingCatalog.basePath) ?? app.basePath
        app.maxQueryBytes = try integer(
            command.maxQueryBytes, SettingCatalog.maxQueryBytes, current: app.maxQueryBytes, minimum: 1)

        let providerName = value(command.provider, SettingCatalog.provider) ?? llm.provider.rawValue
        guard let provider = LLMProvider(rawValue: providerName.lowercased()) else {
            throw ValidationError("Unknown provider \(providerName): use anthropic or openai.")
        }
        llm.provider = provider
        let model = value(command.model, SettingCatalog.model)
        switch provider {
        case .anthropic:
            llm.baseURL = command.baseURL ?? environment["ANTHROPIC_BASE_URL"] ?? llm.baseURL
            llm.apiKey = environment["LONGHAUL_API_KEY"] ?? environment["ANTHROPIC_API_KEY"] ?? ""
            llm.model = model ?? llm.model
        case .openAI:
            llm.baseURL = command.baseURL ?? environment["OPENAI_BASE_URL"] ?? openAIBaseURL
            llm.apiKey = environment["LONGHAUL_API_KEY"] ?? environment["OPENAI_API_KEY"] ?? ""
            guard let model else { throw ValidationError("The openai provider needs --model (or LONGHAUL_MODEL).") }
            llm.model = model
        }
        guard llm.baseURL.hasPrefix("http://") || llm.baseURL.hasPrefix("https://") else {
            throw ValidationError("The base URL \(llm.baseURL) must start with http:// or https://.")
        }
        if provider == .anthropic && llm.apiKey.isEmpty {
            throw ValidationError(
                "No API key: set ANTHROPIC_API_KEY in the environment or in the .env file (or LONGHAUL_API_KEY).")
        }
        llm.maxTokens = try integer(command.maxTokens, SettingCatalog.maxTokens, current: llm.maxTokens, minimum: 1)
        llm.maxRetries = try integer(command.maxRetries, SettingCatalog.maxRetries, current: llm.maxRetries, minimum: 0)
        llm.connectTimeout = try seconds(
            command.connectTimeout, SettingCatalog.connectTimeout, current: llm.connectTimeout)
        llm.idleTimeout = try seconds(command.idleTimeout, SettingCatalog.idleTimeout, current: llm.idleTimeout)
        caFile = value(command.caFile, SettingCatalog.caFile)

        table.maxInFlight = try integer(
            command.maxInFlight, SettingCatalog.maxInFlight, current: table.maxInFlight, minimum: 1)
        table.maxQueued = try integer(command.maxQueued, SettingCatalog.maxQueued, current: table.maxQueued, minimum: 0)
        let perClient = try integer(
            command.maxTasksPerClient, SettingCatalog.maxTasksPerClient, current: table.maxTasksPerClient ?? 0,
            minimum: 0)
        table.maxTasksPerClient = perClient == 0 ? nil : perClient
        table.idempotencyWindow = try seconds(
            command.idempotencyWindow, SettingCatalog.idempotencyWindow, current: table.idempotencyWindow)
        table.taskTimeout = try seconds(command.taskTimeout, SettingCatalog.taskTimeout, current: table.taskTimeout)
        resultTTL = try seconds(command.resultTTL, SettingCatalog.resultTTL, current: resultTTL)
        store = value(command.store, SettingCatalog.store) ?? store
        if store == "memory" {
            redis = nil
        } else {
            guard let url = RedisURL(store) else {
                throw ValidationError(
                    "The store is neither 'memory', a redis://[:password@]host:port/db URL, nor a "
                        + "redis+sentinel://[:password@]host:port,host:port/MASTER/db URL.")
            }
            var configuration = RedisTaskStore.Configuration(url: url)
            configuration.resultTTL = resultTTL
            configuration.leaseTimeout = try seconds(
                command.leaseTimeout, SettingCatalog.leaseTimeout, current: configuration.leaseTimeout)
            guard configuration.leaseTimeout >= .seconds(1) else {
                throw ValidationError("The lease timeout must be at least 1 second.")
            }
            // A round trip that hangs must give up well inside the lease, so that retries fit in it too.
            configuration.timeout = min(configuration.timeout, configuration.leaseTimeout / 4)
            configuration.maxAttempts = try integer(
                command.maxAttempts, SettingCatalog.maxAttempts, current: configuration.maxAttempts, minimum: 1)
            configuration.waitReplicas = try integer(
                command.redisWaitReplicas, SettingCatalog.redisWaitReplicas, current: configuration.waitReplicas,
                minimum: 0)
            redis = configuration
        }
        shutdownGrace = try seconds(command.shutdownGrace, SettingCatalog.shutdownGrace, current: shutdownGrace)

        let levelName = value(command.logLevel, SettingCatalog.logLevel) ?? logLevel.rawValue
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("Unknown log level \(levelName).")
        }
        logLevel = level
        if let text = value(command.accessLog, SettingCatalog.accessLog) {
            switch text.lowercased() {
            case "on", "true", "1", "yes": accessLog = true
            case "off", "false", "0", "no": accessLog = false
            case let other: throw ValidationError("--access-log takes on or off, not \(other).")
            }
        }
    }
}

/// The process environment over the `.env` file: real variables win.
struct Environment {
    private var values: [String: String]

    /// - Parameters:
    ///   - envFile: the `--env-file` flag, if given.
    ///   - defaultPath: the file read when neither the flag nor `LONGHAUL_ENV_FILE` names one.
    init(envFile: String?, defaultPath: String) throws {
        let process = ProcessInfo.processInfo.environment
        values = process
        let path = envFile ?? process["LONGHAUL_ENV_FILE"] ?? defaultPath
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
            var line = String(rawLine.trimmingWhitespace())
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals].trimmingWhitespace())
            var value = String(line[line.index(after: equals)...].trimmingWhitespace())
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            if !key.isEmpty { pairs.append((key, value)) }
        }
        return pairs
    }
}
