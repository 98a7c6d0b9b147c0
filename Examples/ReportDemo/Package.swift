// swift-tools-version:6.1
import PackageDescription

// An app of its own on Longhaul: a slow "report" job with progress, its own page and route, served by Longhaul's
// FastCGI server and task table (polling, streaming, cancel and the JSON API come with it).
let package = Package(
    name: "ReportDemo",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Longhaul", path: "../.."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "ReportDemo",
            dependencies: [
                .product(name: "Longhaul", package: "Longhaul"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ]
)
