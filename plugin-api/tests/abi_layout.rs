//! Guards the frozen ABI: the full layout of the root module (and everything reachable from it)
//! is compared with a committed snapshot. Any difference fails CI, so an ABI change is always a
//! reviewed diff, and one that is not a major version bump is refused.
//!
//! After an intentional change (which requires bumping `ABI_MAJOR`), regenerate with
//! `KARMA_UPDATE_ABI_SNAPSHOT=1 cargo test -p karma-plugin-api --test abi_layout`.

use std::{collections::BTreeSet, fmt::Write};

use abi_stable::{
    type_layout::{TLData, TLField, TypeLayout},
    StableAbi,
};
use karma_plugin_api::abi::{
    HostApi_Ref, ItemDetailsTable, LoglikelihoodTable, PluginRoot_Ref, ProgressTable, ABI_MAJOR,
};

/// A deterministic description of every type reachable from `roots`: names, packages, sizes,
/// alignments, fields and function signatures (abi_stable's own `Debug` output contains
/// addresses, so it cannot be committed). Types are keyed and sorted by their description, not
/// by address: the same type may have several layout statics depending on codegen.
fn describe(roots: &[&'static TypeLayout]) -> String {
    let mut blocks = BTreeSet::new();
    let mut pending: Vec<&'static TypeLayout> = roots.to_vec();
    while let Some(layout) = pending.pop() {
        let mut block = format!(
            "{} (package {}, size {}, align {})\n",
            layout.full_type(),
            layout.package(),
            layout.size(),
            layout.alignment()
        );
        let mut children: Vec<&'static TypeLayout> = Vec::new();
        let mut describe_field = |field: TLField, out: &mut String| {
            if field.is_function() {
                for function in field.function_range().iter() {
                    let returns = function.return_type_layout().map(|returns| returns());
                    let parameters: Vec<&'static TypeLayout> =
                        function.param_type_layouts.iter().map(|layout| layout()).collect();
                    let names: Vec<String> =
                        parameters.iter().map(|layout| layout.full_type().to_string()).collect();
                    let _ = writeln!(
                        out,
                        "  {}: fn({}) -> {}",
                        field.name(),
                        names.join(", "),
                        returns
                            .map(|layout| layout.full_type().to_string())
                            .unwrap_or_else(|| "()".to_owned())
                    );
                    children.extend(parameters);
                    children.extend(returns);
                }
            } else {
                let _ = writeln!(out, "  {}: {}", field.name(), field.full_type());
                children.push(field.layout());
            }
        };
        match layout.data() {
            TLData::Primitive(primitive) => {
                let _ = writeln!(block, "  primitive {primitive:?}");
            }
            TLData::Opaque => block.push_str("  opaque\n"),
            TLData::Struct { fields } | TLData::Union { fields } => {
                for field in fields.iter() {
                    describe_field(field, &mut block);
                }
            }
            TLData::Enum(enumeration) => {
                let variants: Vec<&str> = enumeration.variant_names_iter().collect();
                let _ = writeln!(
                    block,
                    "  enum {variants:?}, field counts {:?}",
                    enumeration.field_count.as_slice()
                );
                for field in enumeration.fields.iter() {
                    describe_field(field, &mut block);
                }
            }
            TLData::PrefixType(prefix) => {
                let _ =
                    writeln!(block, "  prefix type, fixed fields before index {}", prefix.first_suffix_field);
                for field in prefix.fields.iter() {
                    describe_field(field, &mut block);
                }
            }
        }
        for field in layout.phantom_fields().iter() {
            let _ = writeln!(block, "  phantom {}: {}", field.name(), field.full_type());
            children.push(field.layout());
        }
        if blocks.insert(block) {
            pending.extend(children);
        }
    }
    let mut out = format!("karma plugin ABI {ABI_MAJOR}\n");
    for block in blocks {
        out.push('\n');
        out.push_str(&block);
    }
    out
}

#[test]
fn root_layout_matches_the_committed_snapshot() {
    let snapshot_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/abi_layout.snapshot");
    check_snapshot(snapshot_path, describe(&[PluginRoot_Ref::LAYOUT, HostApi_Ref::LAYOUT]));
}

/// An extension's table is frozen under its id (`.../1`): a change needs a new id.
#[test]
fn extension_layouts_match_the_committed_snapshot() {
    let snapshot_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/extension_layouts.snapshot");
    check_snapshot(
        snapshot_path,
        describe(&[LoglikelihoodTable::LAYOUT, ItemDetailsTable::LAYOUT, ProgressTable::LAYOUT]),
    );
}

fn check_snapshot(snapshot_path: &str, actual: String) {
    if std::env::var_os("KARMA_UPDATE_ABI_SNAPSHOT").is_some() {
        std::fs::write(snapshot_path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(snapshot_path).expect("tests/abi_layout.snapshot is committed");
    if actual != expected {
        let first_difference = actual
            .lines()
            .zip(expected.lines())
            .position(|(left, right)| left != right)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
        panic!(
            "the frozen plugin ABI changed (first difference at line {}):\n  snapshot: {:?}\n  now:      {:?}\n\
             Old plugins would stop loading. Undo the change, or bump ABI_MAJOR (an extension: give it a new id) \
             and regenerate the snapshot.",
            first_difference + 1,
            expected.lines().nth(first_difference).unwrap_or("<end>"),
            actual.lines().nth(first_difference).unwrap_or("<end>"),
        );
    }
}
