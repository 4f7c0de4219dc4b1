//! Test support: this crate's test data and fake roots. The loopback HTTP stand-in and
//! the test OIDC issuer's keys and tokens are custody-test-support's (`http`, `oidc`).

use std::path::{Path, PathBuf};

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn read_data(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

/// A fake root: `proc/self/status` and whatever files are added.
pub struct FakeRoot {
    pub dir: tempfile::TempDir,
}

pub const CLEAN_STATUS: &str = "Name:\trunner-guard\nUmask:\t0022\nState:\tR (running)\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";

impl FakeRoot {
    pub fn new(status: &str) -> FakeRoot {
        let root = FakeRoot {
            dir: tempfile::tempdir().unwrap(),
        };
        root.file("/proc/self/status", status);
        root
    }

    pub fn clean() -> FakeRoot {
        Self::new(CLEAN_STATUS)
    }

    pub fn file(&self, absolute: &str, content: &str) {
        let path = self.path().join(absolute.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
