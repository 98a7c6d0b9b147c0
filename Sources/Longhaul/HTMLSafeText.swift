import Foundation
public import HTML
public import Tasks

// Texts a fragment writes many times per second that cannot hold a byte HTML escapes: copied as they are
// (HTMLSafeTextTests checks both against escaping).

/// A task id is 22 characters of `[A-Za-z0-9_-]`.
extension TaskID: HTML.SafeText {
    public var maximumUTF8Count: Int { TaskID.length }

    public func writeSafeUTF8(to start: UnsafeMutablePointer<UInt8>) -> Int {
        writeUTF8(to: start)
        return TaskID.length
    }
}

/// A timestamp as ``Foundation/Date/rfc3339``: digits, `-`, `:`, `.`, `T`, `Z` (and `+` outside 1970...9999).
struct RFC3339Timestamp: HTML.SafeText {
    let date: Date
    /// Whether the date is the current time, whose text up to the second is kept per thread while it lasts.
    var isNow = false

    /// 24 bytes between the years 1970 and 9999; Foundation's text, which may be longer, outside them.
    var maximumUTF8Count: Int { 64 }

    func writeSafeUTF8(to start: UnsafeMutablePointer<UInt8>) -> Int {
        date.writeRFC3339(to: start, keepingSecond: isNow)
    }
}
