//! What the native GPU test files share (`mod common;`): the one adapter of the process.

use std::sync::OnceLock;

use mlplay::gpu::GpuContext;

/// The process's GPU context (lavapipe in CI), acquired once; a missing adapter fails the
/// test with what to install.
pub fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    CTX.get_or_init(|| {
        std::env::set_var("XDG_RUNTIME_DIR", xdg_dir("mlplay-xdg"));
        GpuContext::acquire_blocking()
    })
    .as_ref()
    .unwrap_or_else(|e| {
        panic!("no GPU adapter for the GPU == CPU tests ({e}); install Mesa's lavapipe: apt-get install mesa-vulkan-drivers")
    })
}

/// A private XDG_RUNTIME_DIR (mode 0700) for this process: Mesa warns without one.
pub fn xdg_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    dir
}
