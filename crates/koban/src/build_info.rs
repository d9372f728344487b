//! How this binary was built, filled in at compile time by `build.rs`.

/// Version, git revision and branch, build date and user, rustc version.
pub fn get() -> koban_web::BuildInfo {
    koban_web::BuildInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        revision: env!("KOBAN_BUILD_REVISION").into(),
        branch: env!("KOBAN_BUILD_BRANCH").into(),
        build_user: env!("KOBAN_BUILD_USER").into(),
        build_date: env!("KOBAN_BUILD_DATE").into(),
        go_version: env!("KOBAN_BUILD_RUSTC").into(),
    }
}
