/// Why a task failed: data kept on the task, shown to users and API clients.
public struct TaskFailure: Sendable, Equatable, Codable {
    /// A short machine-readable kind of failure, such as ``Kind/internalError`` or a job's own
    /// (`authentication_error`, `connect_timeout`…). Its raw value is what JSON, HTML and stored records carry.
    public struct Kind: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral,
        CustomStringConvertible
    {
        /// The kind as stored and shown, in `snake_case`.
        public let rawValue: String

        /// - Parameter rawValue: the kind as stored and shown.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// - Parameter value: the kind as stored and shown.
        public init(stringLiteral value: String) {
            self.rawValue = value
        }

        /// Decodes the bare string that older records and the JSON API carry.
        public init(from decoder: any Decoder) throws {
            rawValue = try decoder.singleValueContainer().decode(String.self)
        }

        /// Encodes as the bare string.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }

        public var description: String { rawValue }

        /// The job threw an error that was not a ``JobFailure``.
        public static let internalError: Kind = "internal_error"
        /// The job ran past the table's time limit.
        public static let taskTimeout: Kind = "task_timeout"
        /// No job is registered for the task's kind.
        public static let unknownJob: Kind = "unknown_job"
        /// The server shut down while the task ran.
        public static let interrupted: Kind = "interrupted"
        /// A shared store's task lost its process more often than its attempts allow.
        public static let workerLost: Kind = "worker_lost"
    }

    /// The kind of failure.
    public var kind: Kind
    /// A human-readable explanation that is safe to show (never a secret).
    public var message: String
    /// The upstream request id, when the failure came from an upstream service.
    public var requestID: String?
    /// How many attempts were made before giving up.
    public var attempts: Int?

    /// The kind's raw value, as JSON and HTML print it.
    public var type: String {
        get { kind.rawValue }
        set { kind = Kind(rawValue: newValue) }
    }

    /// The stored form keeps the key `type` that records written before ``Kind`` existed have.
    private enum CodingKeys: String, CodingKey {
        case kind = "type"
        case message
        case requestID
        case attempts
    }

    /// - Parameters:
    ///   - kind: the kind of failure.
    ///   - message: a safe human-readable explanation.
    ///   - requestID: the upstream request id, if any.
    ///   - attempts: the number of attempts made, if known.
    public init(kind: Kind, message: String, requestID: String? = nil, attempts: Int? = nil) {
        self.kind = kind
        self.message = message
        self.requestID = requestID
        self.attempts = attempts
    }

    /// - Parameters:
    ///   - type: the kind of failure, as a string (a job passing on an upstream service's error type).
    ///   - message: a safe human-readable explanation.
    ///   - requestID: the upstream request id, if any.
    ///   - attempts: the number of attempts made, if known.
    public init(type: String, message: String, requestID: String? = nil, attempts: Int? = nil) {
        self.init(kind: Kind(rawValue: type), message: message, requestID: requestID, attempts: attempts)
    }
}
