/// Bytes in one heap block, their count in front: written once by their maker, then only read. A rendered response
/// body is held in one.
///
/// Unlike `[UInt8]`, making one does not look its storage type up at run time: on Linux every allocation of an
/// array of `UInt8` asks the runtime for the prespecialized metadata of its storage class, ~330 instructions, more
/// than the rest of the allocation.
public struct ByteBlock: @unchecked Sendable {
    // Sendable by construction: the bytes are written before `make` returns and never after.
    private final class Storage: ManagedBuffer<Int, UInt8> {}

    private let storage: Storage

    /// Makes a block of `capacity` bytes and lets `fill` write them.
    /// - Parameters:
    ///   - capacity: how many bytes `fill` may write.
    ///   - fill: writes into the buffer and returns how many bytes it wrote (at most `capacity`).
    public init(capacity: Int, _ fill: (UnsafeMutableBufferPointer<UInt8>) throws -> Int) rethrows {
        let storage = unsafeDowncast(Storage.create(minimumCapacity: capacity) { _ in 0 }, to: Storage.self)
        let count = try storage.withUnsafeMutablePointerToElements { elements in
            try fill(UnsafeMutableBufferPointer(start: elements, count: capacity))
        }
        precondition(count >= 0 && count <= capacity, "ByteBlock: \(count) bytes written into \(capacity)")
        // Through the pointer: the `header` property of a class is checked for exclusive access at run time.
        storage.withUnsafeMutablePointerToHeader { $0.pointee = count }
        self.storage = storage
    }

    /// A block holding a copy of `bytes`.
    /// - Parameter bytes: the bytes.
    public init(copying bytes: UnsafeRawBufferPointer) {
        self.init(capacity: bytes.count) { buffer in
            if let source = bytes.baseAddress, let target = buffer.baseAddress {
                UnsafeMutableRawPointer(target).copyMemory(from: source, byteCount: bytes.count)
            }
            return bytes.count
        }
    }

    /// How many bytes the block holds.
    public var count: Int { storage.withUnsafeMutablePointerToHeader { $0.pointee } }

    /// Calls `body` with the bytes, valid only during the call.
    /// - Parameter body: reads the bytes.
    /// - Returns: what `body` returns.
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try storage.withUnsafeMutablePointers { count, elements in
            try body(UnsafeRawBufferPointer(start: elements, count: count.pointee))
        }
    }

    /// The bytes, copied into an array.
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }
}
