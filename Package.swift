// swift-tools-version:6.1
import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode plus the upcoming features STYLE.md asks for.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// The module graph (C modules in brackets; every Swift target also uses swift-log; Longhaul and LonghaulServer use
// swift-service-lifecycle: the FastCGI server, task table and curl client run as `Service`s through adapters there,
// so that FastCGI, Tasks and Curl stay free of it; RedisStore's change feed is a `Service` itself):
//
//   LonghaulServer ──► LonghaulLLM ──► LLM ──► Curl ──► [CCurl]
//         │                 └────────► Longhaul ──► FastCGI ──► [CFastCGI], Locking
//         │                               ├───────► Tasks ──► Locking, [CMalloc]
//         │                               ├───────► HTML
//         │                               └───────► Markdown ──► [CCmarkGFM], HTML
//         └──► RedisStore ──► Tasks, [CHiredis]
//   Examples/ReportDemo ──► Longhaul (the product: no libcurl, no LLM)
let package = Package(
    name: "Longhaul",
    platforms: [.macOS(.v15)],
    products: [
        // The embeddable library: the app, its server, task table and HTML builder (see Examples/ReportDemo). It
        // links neither libcurl nor the LLM code.
        .library(name: "Longhaul", targets: ["Longhaul", "FastCGI", "Tasks", "HTML"]),
        // The LLM demo on top of it: the LLM job, its page, `generate`, `POST /api/tasks` and the OpenAPI document.
        .library(name: "LonghaulLLM", targets: ["LonghaulLLM", "LLM"]),
        .executable(name: "longhaul", targets: ["LonghaulServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // C libraries, each behind one system-library module with typed shims for the variadic calls.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // No pkgConfig: hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM rejects; the header path is standard.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // No pkgConfig: libcmark-gfm.pc exists but the headers sit in /usr/include; the modulemap links both libraries.
        .systemLibrary(
            name: "CCmarkGFM", providers: [.apt(["libcmark-gfm-dev", "libcmark-gfm-extensions-dev"])]),
        // glibc's <malloc.h> (arena limit, trimming, heap figures), part of libc: nothing to link.
        .systemLibrary(name: "CMalloc"),

        // The standard library extensions every module shares: Duration to numbers, trimming whitespace.
        .target(name: "StandardExtensions", swiftSettings: strictSettings),
        // A value shared between threads behind a pthread mutex (which ThreadSanitizer understands).
        .target(name: "Locking", swiftSettings: strictSettings),
        // FastCGI server over libfcgi: accept threads, requests, responses.
        .target(
            name: "FastCGI",
            dependencies: [
                "CFastCGI", "Locking", "StandardExtensions", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // HTTP client over libcurl's multi interface on one dedicated thread.
        .target(
            name: "Curl",
            dependencies: ["StandardExtensions", "CCurl", "Locking", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        // LLM providers (Anthropic Messages API) over the Curl client.
        .target(
            name: "LLM",
            dependencies: [
                "StandardExtensions", "Curl", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        // Task table: ids, records, stores, the runner. Knows nothing of HTTP or LLMs.
        .target(
            name: "Tasks",
            dependencies: [
                "StandardExtensions", "CMalloc", "Locking", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // A task store in Redis (hiredis): many processes on many machines share one task table.
        .target(
            name: "RedisStore",
            dependencies: [
                "StandardExtensions", "CHiredis", "Locking", "Tasks", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Escaping HTML builder.
        .target(name: "HTML", dependencies: ["StandardExtensions"], swiftSettings: strictSettings),
        // Markdown to safe HTML over cmark-gfm (GitHub-flavoured: tables, strikethrough, autolinks, task lists).
        .target(name: "Markdown", dependencies: ["CCmarkGFM", "HTML", "Locking"], swiftSettings: strictSettings),
        // The web app core: the shared task routes, operations routes, views, validation, submission. Knows no job
        // kind: an app adds its own routes (Examples/ReportDemo, LonghaulLLM). Embeddable library.
        .target(
            name: "Longhaul",
            dependencies: [
                "StandardExtensions", "CMalloc", "FastCGI", "Locking", "Tasks", "HTML", "Markdown",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The LLM demo's app: `LLMJob`, its routes (page, `generate`, `POST /api/tasks`, OpenAPI) and its wording.
        .target(
            name: "LonghaulLLM",
            dependencies: ["Longhaul", "LLM", "FastCGI", "HTML", "Tasks"],
            swiftSettings: strictSettings
        ),
        // The `longhaul` executable: flags and environment to configuration, then run.
        .executableTarget(
            name: "LonghaulServer",
            dependencies: [
                "StandardExtensions", "CMalloc", "Longhaul",
                "LonghaulLLM",
                "RedisStore",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The fuzz targets' invariant checks, shared by the libFuzzer binaries and FuzzRegressionTests (Fuzz/).
        .target(
            name: "LonghaulFuzzing",
            dependencies: [
                "Longhaul", "LonghaulLLM", "FastCGI", "Tasks", "LLM", "HTML", "Markdown",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/LonghaulFuzzing",
            swiftSettings: strictSettings
        ),
        // scripts/bench part 7: the render time of a long Markdown answer (prints one JSON line).
        .executableTarget(
            name: "MarkdownBench", dependencies: ["HTML", "Longhaul", "LonghaulLLM", "Markdown", "Tasks"],
            path: "bench/MarkdownBench",
            swiftSettings: strictSettings),
        // What the tests share: test doubles (a manual clock, a capturing log handler, scripted LLM clients, a job),
        // the harnesses (an app over an in-memory table, redis-server and mock LLM processes). Not a product.
        .target(
            name: "LonghaulTestSupport",
            dependencies: [
                "Curl", "FastCGI", "LLM", "Locking", "Longhaul", "LonghaulLLM", "RedisStore", "StandardExtensions",
                "Tasks",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/LonghaulTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LonghaulTests",
            dependencies: [
                "Longhaul", "LonghaulLLM", "FastCGI", "Locking", "Tasks", "LLM", "Curl", "HTML", "Markdown",
                "RedisStore",
                "LonghaulFuzzing", "LonghaulTestSupport",
                // For SettingCatalogTests: --help and the README's table against the configuration defaults.
                "LonghaulServer",
                // For TaskTableServiceTests: a graceful shutdown without a signal.
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)

// The libFuzzer binaries (`fuzz-form`, …), only when LONGHAUL_FUZZ=1 (scripts/fuzz sets it, with
// `--sanitize fuzzer` and `--scratch-path .build-fuzz`): without libFuzzer's `main` they cannot link, and the
// everyday build and test should not carry them.
if Context.environment["LONGHAUL_FUZZ"] == "1" {
    for (binary, target) in [
        ("fuzz-form", "FuzzForm"), ("fuzz-json-request", "FuzzJSONRequest"), ("fuzz-sse", "FuzzSSE"),
        ("fuzz-fastcgi-request", "FuzzFastCGIRequest"), ("fuzz-markdown", "FuzzMarkdown"),
    ] {
        package.targets.append(
            .executableTarget(
                name: target, dependencies: ["LonghaulFuzzing"], path: "Fuzz/Targets/\(target)",
                swiftSettings: strictSettings))
        package.products.append(.executable(name: binary, targets: [target]))
    }
}
