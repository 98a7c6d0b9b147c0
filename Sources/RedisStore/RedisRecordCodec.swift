import Foundation
import Tasks

/// How a task is laid out in Redis: its record as a hash (times in Unix milliseconds, metadata and failure as
/// JSON) beside its output string, and the JSON the scripts are given.
///
/// The field names are the scripts' (``RedisScripts``); a record written by an older version decodes the same.
enum RedisRecordCodec {
    /// A record from a script's snapshot `{hash as flat array, output}`.
    /// - Parameters:
    ///   - id: the task's id (the hash does not hold it).
    ///   - snapshot: the reply.
    /// - Returns: the record, or `nil` when the task does not exist (an empty hash) or the hash is malformed.
    static func decodeRecord(id: TaskID, _ snapshot: RedisValue) -> TaskRecord? {
        let parts = snapshot.elements
        guard parts.count == 2 else { return nil }
        let fields = hashFields(parts[0])
        guard !fields.isEmpty, let created = fields["created"].flatMap(date(milliseconds:)) else { return nil }
        var record = TaskRecord(id: id, kind: fields["kind"] ?? "", input: fields["input"] ?? "", createdAt: created)
        record.status = fields["status"].flatMap(TaskStatus.init(rawValue:)) ?? .queued
        record.startedAt = fields["started"].flatMap(date(milliseconds:))
        record.finishedAt = fields["finished"].flatMap(date(milliseconds:))
        record.output = parts[1].text ?? ""
        if let failure = fields["failure"], !failure.isEmpty { record.failure = decodeFailure(failure) }
        if let metadata = fields["metadata"], let decoded = decodeMetadata(metadata) { record.metadata = decoded }
        record.progress = fields["progress"].flatMap(Double.init)
        record.cancelRequested = fields["cancel"] == "1" && !record.status.isFinished
        record.client = fields["client"].flatMap { $0.isEmpty ? nil : $0 }
        record.attempt = fields["runs"].flatMap { Int($0) } ?? 0
        return record
    }

    /// Metadata entries as the JSON object the update script merges (`{}` when they cannot be encoded).
    static func encodeMetadata(_ metadata: [String: String]) -> String {
        (try? JSONEncoder().encode(metadata)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// A failure as the JSON kept in the hash's `failure` field (empty for none).
    static func encodeFailure(_ failure: TaskFailure?) -> String {
        failure.flatMap { try? JSONEncoder().encode($0) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// The fields of an `HGETALL` reply (a flat array of names and values).
    private static func hashFields(_ reply: RedisValue) -> [String: String] {
        let flat = reply.elements
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let key = flat[index].text { fields[key] = flat[index + 1].text ?? "" }
            index += 2
        }
        return fields
    }

    private static func decodeFailure(_ json: String) -> TaskFailure? {
        try? JSONDecoder().decode(TaskFailure.self, from: Data(json.utf8))
    }

    private static func decodeMetadata(_ json: String) -> [String: String]? {
        try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))
    }

    /// A time the scripts wrote (Redis `TIME` in milliseconds since 1970).
    private static func date(milliseconds text: String) -> Date? {
        Double(text).map { Date(timeIntervalSince1970: $0 / 1000) }
    }
}
