public import StandardExtensions

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension HTML {
    /// Builds markup in one growable byte buffer, for fragments rendered on every request (a polled task's
    /// fragment): each piece is one `memcpy`, without the per-append checks of `Array` or the literal copies of
    /// string interpolation.
    ///
    /// It keeps ``HTML``'s guarantee: markup passes through unchanged only when it is a `StaticString` (a literal
    /// written in source code) or already ``HTML``; every `String` is escaped.
    public struct Writer: ~Copyable {
        @usableFromInline var base: UnsafeMutablePointer<UInt8>
        @usableFromInline var count = 0
        @usableFromInline var capacity: Int
        /// Whether `base` is this writer's own `malloc` block (after growing) rather than the array's storage it
        /// started in.
        @usableFromInline var ownsBuffer = false

        /// A writer that fills `buffer` (an array's uninitialised storage) until it needs more room.
        fileprivate init(filling buffer: UnsafeMutableBufferPointer<UInt8>) {
            base = buffer.baseAddress!
            capacity = buffer.count
        }

        deinit {
            if ownsBuffer { free(base) }
        }

        /// `malloc`: `UnsafeMutablePointer.allocate` goes through `posix_memalign` (~450 instructions more).
        @usableFromInline
        static func allocate(_ capacity: Int) -> UnsafeMutablePointer<UInt8> {
            guard let raw = malloc(capacity) else { fatalError("out of memory") }
            return raw.bindMemory(to: UInt8.self, capacity: capacity)
        }

        /// Makes room for `extra` more bytes.
        @inlinable @inline(__always)
        mutating func reserve(_ extra: Int) {
            guard count &+ extra > capacity else { return }
            grow(extra)
        }

        /// Moves the bytes to a buffer with room for `extra` more (out of line: the rare path).
        @usableFromInline
        mutating func grow(_ extra: Int) {
            let newCapacity = max(capacity * 2, count + extra)
            let grown = Self.allocate(newCapacity)
            grown.update(from: base, count: count)
            if ownsBuffer { free(base) }
            base = grown
            capacity = newCapacity
            ownsBuffer = true
        }

        /// Appends text that needs no escaping by its type (``SafeText``): written by the text itself, in place.
        /// - Parameter text: a task id, a timestamp…
        @inlinable @inline(__always)
        public mutating func append(_ text: some SafeText) {
            reserve(text.maximumUTF8Count)
            count &+= text.writeSafeUTF8(to: base + count)
        }

        @inlinable @inline(__always)
        mutating func copy(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
            reserve(bytes.count)
            (base + count).update(from: source, count: bytes.count)
            count &+= bytes.count
        }

        /// Appends markup written in source code, unchanged.
        ///
        /// Inlined where it is written: the literal's length is then a constant, and its copy a few moves instead
        /// of a call and a `memcpy` (a fragment is some thirty literals).
        /// - Parameter markup: a literal.
        @inlinable @inline(__always)
        public mutating func append(_ markup: StaticString) {
            // A literal of more than one scalar is stored as UTF-8: its bytes in place, without a closure.
            guard markup.hasPointerRepresentation else { return markup.withUTF8Buffer { copy($0) } }
            copy(UnsafeBufferPointer(start: markup.utf8Start, count: markup.utf8CodeUnitCount))
        }

        /// Appends a trusted fragment unchanged.
        /// - Parameter html: the fragment.
        public mutating func append(fragment html: HTML) {
            html.utf8.withUnsafeBufferPointer { copy($0) }
        }

        /// Appends text, escaped for element content and quoted attribute values.
        /// - Parameter text: untrusted text.
        public mutating func appendEscaped(_ text: String) {
            if text.isEmpty { return }  // a fragment's output before the first delta, an app at the root
            // A native string's bytes in place; `withUTF8` on a copy of it is the fallback for any other.
            if text.utf8.withContiguousStorageIfAvailable({ appendEscaped(utf8: $0) }) != nil { return }
            var contiguous = text
            contiguous.withUTF8 { appendEscaped(utf8: $0) }
        }

        /// Appends UTF-8 text, escaped for element content and quoted attribute values.
        /// - Parameter utf8: untrusted text's bytes.
        public mutating func appendEscaped(utf8: UnsafeBufferPointer<UInt8>) {
            var clean = 0
            var index = 0
            while let found = Self.nextToEscape(in: utf8, from: index) {
                index = found + 1
                copy(UnsafeBufferPointer(rebasing: utf8[clean..<found]))
                switch utf8[found] {
                case 0x26: append("&amp;")
                case 0x3C: append("&lt;")
                case 0x3E: append("&gt;")
                case 0x22: append("&quot;")
                default: append("&#39;")
                }
                clean = found + 1
            }
            copy(UnsafeBufferPointer(rebasing: utf8[clean...]))
        }

        /// Where the next byte that needs escaping is, from `start` on: eight bytes at a time (a word with none of
        /// the five is skipped with a few operations per character), then byte by byte.
        static func nextToEscape(in utf8: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
            guard let base = utf8.baseAddress else { return nil }
            var index = start
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            @inline(__always) func hasByte(_ word: UInt64, _ byte: UInt8) -> UInt64 {
                let x = word ^ (ones &* UInt64(byte))
                return (x &- ones) & ~x & highs
            }
            while utf8.count - index >= 8 {
                let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
                let any =
                    hasByte(word, 0x26) | hasByte(word, 0x3C) | hasByte(word, 0x3E) | hasByte(word, 0x22)
                    | hasByte(word, 0x27)
                if any != 0 { break }
                index += 8
            }
            while index < utf8.count {
                if HTML.needsEscaping(base[index]) { return index }
                index += 1
            }
            return nil
        }

        /// How many bytes are written so far: a position for ``appendCopy(of:)``.
        @inlinable
        public var position: Int { count }

        /// Appends again bytes this writer wrote before (say, an escaped id used several times), without escaping
        /// them a second time.
        /// - Parameter range: positions returned by ``position`` around the earlier append.
        @inlinable @inline(__always)
        public mutating func appendCopy(of range: Range<Int>) {
            precondition(range.lowerBound >= 0 && range.upperBound <= count, "not written yet")
            reserve(range.count)
            (base + count).update(from: base + range.lowerBound, count: range.count)
            count &+= range.count
        }

        /// Appends a whole number in decimal (digits and a minus sign need no escaping), straight into the buffer.
        /// - Parameter value: the number.
        public mutating func append(_ value: Int) {
            let digits = DecimalText.digitCount(value.magnitude)
            let length = value < 0 ? digits + 1 : digits
            reserve(length)
            if value < 0 { base[count] = UInt8(ascii: "-") }
            DecimalText.write(value.magnitude, to: base + count + length - digits)
            count += length
        }
    }

    /// Renders markup with a ``Writer``.
    /// - Parameters:
    ///   - capacity: the expected size in bytes (the buffer grows past it when needed).
    ///   - body: writes the markup.
    /// - Returns: the markup.
    public static func write(capacity: Int, _ body: (inout Writer) -> Void) -> HTML {
        // The bytes are written into the array's own storage: no buffer of the writer's and no copy into an array
        // afterwards, unless the markup outgrows `capacity` (then it is copied once, from the grown buffer).
        var grown: [UInt8]?
        let bytes = [UInt8](unsafeUninitializedCapacity: max(capacity, 64)) { buffer, initialized in
            var writer = Writer(filling: buffer)
            body(&writer)
            if writer.ownsBuffer {
                grown = [UInt8](UnsafeBufferPointer(start: writer.base, count: writer.count))
                initialized = 0
            } else {
                initialized = writer.count
            }
        }
        return HTML(writtenBytes: grown ?? bytes)
    }

    /// Renders markup with a ``Writer`` into a buffer the caller owns (a response being put together in place).
    /// - Parameters:
    ///   - buffer: where the markup goes.
    ///   - body: writes the markup.
    /// - Returns: how many bytes were written, or `nil` when the markup did not fit (then `buffer` holds nothing
    ///   meaningful).
    public static func write(into buffer: UnsafeMutableBufferPointer<UInt8>, _ body: (inout Writer) -> Void) -> Int? {
        guard !buffer.isEmpty else { return nil }
        var writer = Writer(filling: buffer)
        body(&writer)
        return writer.ownsBuffer ? nil : writer.count
    }

    /// Renders markup with a ``Writer`` into a ``ByteBlock`` (a response body made without an `Array`).
    /// - Parameters:
    ///   - capacity: the expected size in bytes (past it, the markup is copied once into a block of its size).
    ///   - body: writes the markup.
    /// - Returns: the markup's bytes.
    public static func writeBlock(capacity: Int, _ body: (inout Writer) -> Void) -> ByteBlock {
        var grown: ByteBlock?
        let block = ByteBlock(capacity: max(capacity, 64)) { buffer in
            var writer = Writer(filling: buffer)
            body(&writer)
            guard writer.ownsBuffer else { return writer.count }
            grown = ByteBlock(copying: UnsafeRawBufferPointer(start: writer.base, count: writer.count))
            return 0
        }
        return grown ?? block
    }

    /// A value whose text never holds a byte HTML escapes (`&`, `<`, `>`, `"`, `'`), by construction of its type:
    /// ``Writer/append(_:)-(SafeText)`` copies it without scanning. A conformance is a promise that a test checks.
    public protocol SafeText {
        /// The most UTF-8 bytes the text can have.
        var maximumUTF8Count: Int { get }
        /// Writes the text's UTF-8 bytes at `start`, where there is room for ``maximumUTF8Count``.
        /// - Returns: how many bytes it wrote.
        func writeSafeUTF8(to start: UnsafeMutablePointer<UInt8>) -> Int
    }
}
