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

    /// The hash fields a record is made of, in the order ``decodeRecord(id:fields:output:)`` reads them (`HMGET`):
    /// the claim's `token` and the `attempts` counter stay on the server.
    static let recordFields = [
        "kind", "input", "status", "created", "started", "finished", "failure", "metadata", "progress", "cancel",
        "client", "runs",
    ]

    /// A record from an `HMGET` of ``recordFields`` and the output string: the same record
    /// ``decodeRecord(id:_:)`` makes of a script's snapshot, without a dictionary of the fields or Foundation's JSON
    /// decoder for the metadata (the common case of every poll).
    /// - Parameters:
    ///   - id: the task's id.
    ///   - fields: one value per name in ``recordFields`` (null where the hash has none).
    ///   - output: the `GET` of the output key (null when there is none).
    /// - Returns: the record, or `nil` when the task does not exist (no `created` field: the hash is gone or expired).
    static func decodeRecord(id: TaskID, fields: [RedisValue], output: RedisValue) -> TaskRecord? {
        guard fields.count == recordFields.count, let created = milliseconds(fields[3]) else { return nil }
        var record = TaskRecord(
            id: id, kind: fields[0].text ?? "", input: fields[1].text ?? "",
            createdAt: Date(timeIntervalSince1970: created / 1000))
        record.status = fields[2].text.flatMap(TaskStatus.init(rawValue:)) ?? .queued
        record.startedAt = milliseconds(fields[4]).map { Date(timeIntervalSince1970: $0 / 1000) }
        record.finishedAt = milliseconds(fields[5]).map { Date(timeIntervalSince1970: $0 / 1000) }
        record.output = output.text ?? ""
        if let failure = fields[6].text, !failure.isEmpty { record.failure = decodeFailure(failure) }
        if case .string(var text) = fields[7] {
            if let decoded = text.withUTF8({ FlatJSONObject.parse($0) }) ?? decodeMetadata(text) {
                record.metadata = decoded
            }
        }
        record.progress = fields[8].text.flatMap(Double.init)
        record.cancelRequested = fields[9] == .string("1") && !record.status.isFinished
        record.client = fields[10].text.flatMap { $0.isEmpty ? nil : $0 }
        record.attempt = fields[11].integer ?? 0
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

    /// A time the scripts wrote, in milliseconds since 1970, from a reply (`nil` for null or not a number).
    private static func milliseconds(_ value: RedisValue) -> Double? {
        guard case .string(let text) = value, !text.isEmpty else { return nil }
        // Whole milliseconds (all the scripts write) read from the digits; anything else the slow way.
        var whole = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), whole < Int.max / 10 - 9 else {
                return Double(text)
            }
            whole = whole * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return Double(whole)
    }

    /// A time the scripts wrote (Redis `TIME` in milliseconds since 1970).
    private static func date(milliseconds text: String) -> Date? {
        Double(text).map { Date(timeIntervalSince1970: $0 / 1000) }
    }
}
