// swift-tools-version:6.2
import PackageDescription

/// One list of Swift settings for every target (house style: the same rules everywhere).
let swiftSettings: [SwiftSetting] = [
    // https://github.com/apple/swift-evolution/blob/main/proposals/0335-existential-any.md
    .enableUpcomingFeature("ExistentialAny"),
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0444-member-import-visibility.md
    .enableUpcomingFeature("MemberImportVisibility"),
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0409-access-level-on-imports.md
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "picloud",
    platforms: [.macOS(.v15)],
    products: [
    ],
    targets: [
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        .target(
            name: "CLuaShim",
            dependencies: ["CLua"]
        ),
        .target(
            name: "LuaBridge",
            dependencies: ["CLuaShim", "CLua"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LuaBridgeTests",
            dependencies: ["LuaBridge"],
            swiftSettings: swiftSettings
        ),
    ]
)
