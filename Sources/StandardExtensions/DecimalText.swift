/// Whole numbers written as decimal ASCII digits straight into memory, without a `String`: a response's
/// `Content-Length`, a Redis command's counts, a number in a rendered fragment.
public enum DecimalText {
    /// How many digits `value` has (1 for 0).
    @inlinable
    public static func digitCount(_ value: UInt) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return digits
    }

    /// Writes `value`'s digits at `start`, which must have room for ``digitCount(_:)`` bytes.
    /// - Returns: how many bytes were written.
    @inlinable @discardableResult
    public static func write(_ value: UInt, to start: UnsafeMutablePointer<UInt8>) -> Int {
        let digits = digitCount(value)
        var rest = value
        var position = digits
        repeat {
            position -= 1
            start[position] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        } while rest > 0
        return digits
    }

    /// Appends `value`'s digits to a byte buffer.
    @inlinable
    public static func append(_ value: UInt, to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digitCount(value)))
        bytes.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            write(value, to: base + start)
        }
    }
}
