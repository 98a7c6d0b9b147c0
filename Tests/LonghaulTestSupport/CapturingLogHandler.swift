import Locking
public import Logging

/// A log handler that keeps every entry, for tests that check what a library logs.
public struct CapturingLogHandler: LogHandler {
    /// One logged entry.
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: Logger.Metadata
    }

    /// Where the entries go (shared by the handler's copies).
    public final class Store: Sendable {
        private let entries = LockedValue<[Entry]>([])
        public var all: [Entry] { entries.withLock { $0 } }
        public func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }
    }

    public let store: Store
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        store.append(
            Entry(
                level: event.level, message: "\(event.message)",
                metadata: metadata.merging(event.metadata ?? [:]) { _, new in new }))
    }

    /// A logger whose entries land in a new store.
    public static func logger() -> (Logger, Store) {
        let store = Store()
        return (Logger(label: "test") { _ in CapturingLogHandler(store: store) }, store)
    }
}
