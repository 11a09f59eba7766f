//! Loads a pre-checked file: `dlopen`, pointer sanity, abi_stable header, ABI version policy,
//! layout check, then the plugin's model list.

use std::{
    ffi::{c_void, CStr, CString},
    os::unix::ffi::OsStrExt,
    path::Path,
};

use abi_stable::library::{AbiHeader, AbiHeaderRef, LibraryError, RootModuleError};
use karma_plugin_api::abi::{AbiInfo, ModelMeta, PluginRoot_Ref, ABI_MAJOR, ROOT_SYMBOL};

use super::{
    precheck::ElfSummary,
    rejection::{RejectCode, Rejection},
};

/// A plugin whose root module passed every check.
pub struct LoadedLibrary {
    pub root: PluginRoot_Ref,
    pub abi_info: AbiInfo,
    pub models: Vec<ModelMeta>,
}

/// Loads the library at `path` (already statically checked) and reads its models.
///
/// The library is never unloaded: Rust thread-local destructors make `dlclose` unsound, and
/// every serious plugin host leaks on purpose.
pub fn load(path: &Path, summary: &ElfSummary) -> Result<LoadedLibrary, Rejection> {
    load_as(path, None, summary)
}

/// As [`load`], opening `open_as` (a `/proc/self/fd/N` of a descriptor already hashed, so the
/// file loaded is the file that was checked) while naming `path` in every message.
pub fn load_as(
    path: &Path,
    open_as: Option<&Path>,
    summary: &ElfSummary,
) -> Result<LoadedLibrary, Rejection> {
    let canonical = match open_as {
        Some(open_as) => open_as.to_owned(),
        None => path.canonicalize().unwrap_or_else(|_| path.to_owned()),
    };
    // RTLD_NOW: an unresolved symbol must fail here, not kill the process at first call.
    // RTLD_LOCAL: two plugins may contain the same Rust symbols.
    let library =
        unsafe { libloading::os::unix::Library::open(Some(&canonical), libc::RTLD_NOW | libc::RTLD_LOCAL) }
            .map_err(|error| open_failure(path, summary, &error.to_string()))?;

    let symbol_name = format!("{ROOT_SYMBOL}\0");
    let root_address = match unsafe { library.get::<*const c_void>(symbol_name.as_bytes()) } {
        Ok(symbol) => symbol.into_raw(),
        Err(error) => {
            return Err(Rejection::new(path, RejectCode::NotAPlugin, "not a karma plugin: no root module")
                .detail(error.to_string()))
        }
    };
    check_root_pointer(
        path,
        &canonical,
        root_address,
        std::mem::size_of::<abi_stable::library::LibHeader>(),
    )?;
    let library = Box::leak(Box::new(library));
    // SAFETY: the symbol is abi_stable's header static, which starts with an `AbiHeader`;
    // `AbiHeaderRef` is a transparent reference to it and the address was checked to lie inside
    // the library's mapped segments.
    let header: AbiHeaderRef = unsafe {
        *library.get::<AbiHeaderRef>(symbol_name.as_bytes()).map_err(|error| {
            Rejection::new(path, RejectCode::NotAPlugin, "not a karma plugin: no root module")
                .detail(error.to_string())
        })?
    };
    check_abi_stable_header(path, &header)?;
    let lib_header = header.upgrade().map_err(|error| {
        Rejection::new(path, RejectCode::AbiStableMismatch, "the plugin's C ABI self-test failed")
            .detail(error.to_string())
    })?;

    let version = lib_header.version_strings();
    let parsed = version.parsed().map_err(|error| {
        Rejection::new(
            path,
            RejectCode::AbiMajorMismatch,
            format!("unreadable ABI version `{}`", version.version),
        )
        .detail(error.to_string())
    })?;
    if parsed.major != u32::from(ABI_MAJOR) {
        return Err(Rejection::new(
            path,
            RejectCode::AbiMajorMismatch,
            format!(
                "built against plugin-api {}.{}, this host supports {ABI_MAJOR}.x",
                parsed.major, parsed.minor
            ),
        )
        .hint(format!(
            "rebuild the plugin against karma-plugin-api {ABI_MAJOR}.x, or use a karma-host for ABI {}",
            parsed.major
        )));
    }

    // The version policy above is ours; abi_stable's own check would reject older minors.
    let root: PluginRoot_Ref = lib_header.check_layout::<PluginRoot_Ref>().map_err(|error| match error {
        LibraryError::AbiInstability(dump) => {
            let dump = dump.to_string();
            Rejection::new(
                path,
                RejectCode::LayoutMismatch,
                format!("its ABI layout differs from this host's: {}", last_error_line(&dump)),
            )
            .hint(format!("rebuild the plugin against karma-plugin-api {ABI_MAJOR}.x (run with -v for the full layout report)"))
            .detail(dump)
        }
        LibraryError::RootModule { err: RootModuleError::Unwound, .. } => {
            Rejection::new(path, RejectCode::InitFailed, "the plugin panicked while initializing its root module")
        }
        other => Rejection::new(path, RejectCode::InitFailed, format!("root module initialization failed: {other}")),
    })?;

    let abi_info = root.abi_info();
    let descriptors = match (root.models())() {
        abi_stable::std_types::RResult::ROk(descriptors) => descriptors,
        abi_stable::std_types::RResult::RErr(error) => {
            return Err(Rejection::new(
                path,
                RejectCode::InitFailed,
                format!("listing its models failed: {error}"),
            ))
        }
    };
    let mut models = Vec::with_capacity(descriptors.len());
    for descriptor in descriptors.iter() {
        let meta: ModelMeta = serde_json::from_str(descriptor.meta_json.as_str()).map_err(|error| {
            Rejection::new(
                path,
                RejectCode::BadMetadata,
                format!("invalid metadata for model `{}`: {error}", descriptor.name),
            )
        })?;
        if meta.name != descriptor.name.as_str() {
            return Err(Rejection::new(
                path,
                RejectCode::BadMetadata,
                format!("model `{}` describes itself as `{}`", descriptor.name, meta.name),
            ));
        }
        models.push(meta);
    }
    Ok(LoadedLibrary { root, abi_info, models })
}

/// Turns a `dlopen` error into the reason a person can act on.
fn open_failure(path: &Path, summary: &ElfSummary, message: &str) -> Rejection {
    if let Some(missing) = summary
        .needed
        .iter()
        .find(|library| message.contains(&format!("{library}: cannot open shared object file")))
    {
        return Rejection::new(path, RejectCode::MissingLibrary, format!("missing library {missing}"))
            .hint(format!(
                "install the package providing `{missing}`, or add its directory to LD_LIBRARY_PATH"
            ))
            .detail(message.to_owned());
    }
    if let Some(position) = message.find("undefined symbol: ") {
        let symbol = message[position + "undefined symbol: ".len()..].trim();
        return Rejection::new(path, RejectCode::UnresolvedSymbol, format!("unresolved symbol `{symbol}`"))
            .hint("the plugin was linked against a library or version this system lacks; rebuild it here")
            .detail(message.to_owned());
    }
    Rejection::new(path, RejectCode::OpenFailed, format!("the dynamic loader refused it: {message}"))
}

fn check_abi_stable_header(path: &Path, header: &AbiHeader) -> Result<(), Rejection> {
    let expected = AbiHeader::VALUE;
    if header.magic_string != expected.magic_string {
        return Err(Rejection::new(
            path,
            RejectCode::AbiStableMismatch,
            "not a karma plugin: its root symbol is not an abi_stable header",
        ));
    }
    if !header.is_valid() {
        return Err(Rejection::new(
            path,
            RejectCode::AbiStableMismatch,
            format!(
                "built with abi_stable ABI {}.{}, this host uses {}.{}",
                header.abi_major, header.abi_minor, expected.abi_major, expected.abi_minor
            ),
        )
        .hint(format!("rebuild the plugin against karma-plugin-api {ABI_MAJOR}.x")));
    }
    Ok(())
}

/// Rejects a root symbol that is null or does not lie (with `len` bytes) inside one of the
/// library's loaded segments, before anything dereferences it.
fn check_root_pointer(
    path: &Path,
    canonical: &Path,
    address: *const c_void,
    len: usize,
) -> Result<(), Rejection> {
    if address.is_null() {
        return Err(Rejection::new(path, RejectCode::BadRootPointer, "its root symbol is a null pointer"));
    }
    let segments = loaded_segments(canonical);
    let start = address as usize;
    let inside = segments
        .iter()
        .any(|&(low, high)| start >= low && start.checked_add(len).is_some_and(|end| end <= high));
    if !inside {
        return Err(Rejection::new(
            path,
            RejectCode::BadRootPointer,
            format!("its root symbol points outside the library ({start:#x})"),
        ));
    }
    Ok(())
}

/// The address ranges of the `PT_LOAD` segments of the loaded object whose name is `canonical`.
fn loaded_segments(canonical: &Path) -> Vec<(usize, usize)> {
    struct Search {
        name: CString,
        segments: Vec<(usize, usize)>,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: called by dl_iterate_phdr with a valid info struct and our `Search`.
        let (info, search) = unsafe { (&*info, &mut *data.cast::<Search>()) };
        if info.dlpi_name.is_null() || unsafe { CStr::from_ptr(info.dlpi_name) } != search.name.as_c_str() {
            return 0;
        }
        for index in 0..usize::from(info.dlpi_phnum) {
            let header = unsafe { &*info.dlpi_phdr.add(index) };
            if header.p_type == libc::PT_LOAD {
                let low = info.dlpi_addr as usize + header.p_vaddr as usize;
                search.segments.push((low, low + header.p_memsz as usize));
            }
        }
        1
    }
    let Ok(name) = CString::new(canonical.as_os_str().as_bytes()) else { return Vec::new() };
    let mut search = Search { name, segments: Vec::new() };
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search).cast()) };
    search.segments
}

/// The useful line of abi_stable's multi-hundred-line layout report.
pub(crate) fn last_error_line(dump: &str) -> String {
    let mut lines = dump.lines().map(str::trim);
    let error = dump
        .lines()
        .map(str::trim)
        .rfind(|line| line.starts_with("Error:"))
        .map(|line| line.trim_start_matches("Error:").trim().to_owned());
    match error {
        Some(text) if !text.is_empty() => text,
        _ => lines.find(|line| !line.is_empty()).unwrap_or("layout mismatch").to_owned(),
    }
}
