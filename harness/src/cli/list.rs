//! `xdplab list`: every scenario and what it checks, without privileges.

use std::path::PathBuf;

use super::load_all;
use crate::exit::Exit;

/// Prints each scenario of `paths` with its program, frames and expectations.
pub(super) fn list(paths: &[PathBuf]) -> Exit {
    let scenarios = match load_all(paths) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    for s in &scenarios {
        println!("{}  ({})", s.name, s.path.display());
        if let Some(description) = &s.description {
            println!("    {description}");
        }
        if let Some(reason) = &s.skip {
            println!("    skipped: {reason}");
        }
        if !s.requires.is_empty() {
            let requires: Vec<String> = s.requires.iter().map(ToString::to_string).collect();
            println!("    requires: {}", requires.join(", "));
        }
        let object = s.program.object.name();
        let mode = s.program.mode;
        for netns in &s.netns {
            println!("    netns {}", netns.describe());
        }
        println!("    program {object}:{} in {mode} mode", s.program.entry);
        for rule in &s.rules {
            println!("    rule: {}", rule.describe());
        }
        for g in &s.sends {
            println!(
                "    send {:?}: {} frame(s), expect {}",
                g.name, g.count, g.expect
            );
        }
        for m in &s.map_expects {
            println!("    expect map {}", m.describe());
        }
        if let Some(t) = &s.throughput {
            println!("    {}", t.describe());
        }
        for step in &s.steps {
            println!(
                "    step (line {}): {}",
                step.line,
                step.action.describe(&s.sends)
            );
        }
    }
    Exit::Pass
}
