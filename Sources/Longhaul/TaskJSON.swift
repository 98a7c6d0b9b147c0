import Foundation
public import Tasks

extension TaskRecord {
    /// The task as the JSON API shows it.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .string(id.rawValue)),
            ("status", .string(status.rawValue)),
            ("kind", .string(kind)),
            ("query", .string(input)),
            ("created_at", .string(createdAt.rfc3339)),
        ]
        if let startedAt { members.append(("started_at", .string(startedAt.rfc3339))) }
        if let finishedAt { members.append(("finished_at", .string(finishedAt.rfc3339))) }
        if status == .succeeded || !output.isEmpty { members.append(("result", .string(output))) }
        if let progress { members.append(("progress", .double(progress))) }
        if let failure {
            var error: [(String, JSONValue)] = [("type", .string(failure.type)), ("message", .string(failure.message))]
            if let requestID = failure.requestID { error.append(("request_id", .string(requestID))) }
            if let attempts = failure.attempts { error.append(("attempts", .int(attempts))) }
            members.append(("error", .object(error)))
        }
        if let input = metadata["usage.input_tokens"].flatMap(Int.init),
            let output = metadata["usage.output_tokens"].flatMap(Int.init)
        {
            members.append(("usage", .object([("input_tokens", .int(input)), ("output_tokens", .int(output))])))
        }
        if let stopReason = metadata["stop_reason"] { members.append(("stop_reason", .string(stopReason))) }
        if let requestID = metadata["request_id"] ?? failure?.requestID {
            members.append(("request_id", .string(requestID)))
        }
        if let attempts = metadata["attempts"].flatMap(Int.init) { members.append(("attempts", .int(attempts))) }
        if let model = metadata["model"] { members.append(("model", .string(model))) }
        if cancelRequested && !status.isFinished { members.append(("cancel_requested", .bool(true))) }
        return .object(members)
    }
}
