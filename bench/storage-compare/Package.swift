// swift-tools-version:6.2
// GRDB against sqlite-nio on the operations PiCloud's kv does, to choose the SQLite layer
// (DESIGN.md asks for the choice to be measured). A package of its own, so the main build and
// CI do not compile sqlite-nio.   swift run -c release storage-compare
import PackageDescription

let package = Package(
    name: "storage-compare",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
    ],
    targets: [
        .executableTarget(
            name: "StorageCompare",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ]
        ),
    ]
)
