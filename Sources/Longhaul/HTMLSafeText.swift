import Foundation
public import HTML
public import Tasks

// Texts a fragment writes many times per second that cannot hold a byte HTML escapes: copied as they are
// (HTMLSafeTextTests checks both against escaping).

/// A task id is 22 characters of `[A-Za-z0-9_-]`.
extension TaskID: HTML.SafeText {
    public func withSafeUTF8<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        withUTF8(body)
    }
}

/// A timestamp as ``Foundation/Date/rfc3339``: digits, `-`, `:`, `.`, `T`, `Z` (and `+` outside 1970...9999).
struct RFC3339Timestamp: HTML.SafeText {
    let date: Date
    /// Whether the date is the current time, whose text up to the second is kept per thread while it lasts.
    var isNow = false

    func withSafeUTF8<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        isNow ? date.withRFC3339BytesOnceASecond(body) : date.withRFC3339Bytes(body)
    }
}
