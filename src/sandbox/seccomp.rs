//! The default seccomp policy for RUN, compiled once into BPF with `seccompiler`.
//!
//! It is equivalent in spirit to Docker's `default.json` (moby/profiles) for a process without
//! CAP_SYS_ADMIN: the syscalls Docker only allows with SYS_ADMIN, SYS_MODULE, SYS_BOOT,
//! SYS_PTRACE, SYS_TIME or SYS_RAWIO, and the ones it never allows (keyring, io_uring,
//! open_by_handle_at), return EPERM; `clone` with namespace flags returns EPERM; `clone3`
//! returns ENOSYS so libc falls back to `clone`, whose flags a classic BPF filter can inspect.
//! Docker's profile is an allow-list; this one is a deny-list, so syscalls added to the kernel
//! later are allowed by default. Not owned here: installing the filter (see `init`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use nix::libc;
use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

/// The two compiled programs: the EPERM deny-list and the clone3 ENOSYS filter.
pub struct Programs {
    pub deny: Vec<libc::sock_filter>,
    pub clone3: Vec<libc::sock_filter>,
}

/// Syscalls that always fail with EPERM inside RUN.
fn denied_syscalls() -> Vec<libc::c_long> {
    let mut list = vec![
        // mounting and changing roots: CAP_SYS_ADMIN in Docker's profile
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        // namespaces: unshare/setns need CAP_SYS_ADMIN in Docker's profile, which also blocks
        // unshare(CLONE_NEWUSER), the usual first step of kernel exploits
        libc::SYS_unshare,
        libc::SYS_setns,
        // kernel code and reboot
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_lookup_dcookie,
        libc::SYS_fanotify_init,
        libc::SYS_quotactl,
        libc::SYS_acct,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_syslog,
        libc::SYS_vhangup,
        // keyrings are not namespaced: absent from Docker's profile
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        // io_uring: absent from Docker's profile
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        // tracing and inspecting other processes: CAP_SYS_PTRACE in Docker's profile
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kcmp,
        // "shocker": open_by_handle_at walks around mount boundaries (CAP_DAC_READ_SEARCH)
        libc::SYS_open_by_handle_at,
        // the clock is host-wide: CAP_SYS_TIME
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_uselib,
        libc::SYS_nfsservctl,
        libc::SYS__sysctl,
    ]);
    list
}

/// Namespace flags that `clone` may not be given.
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

fn target_arch() -> Result<TargetArch, BackendError> {
    TargetArch::try_from(std::env::consts::ARCH)
}

fn to_libc(program: BpfProgram) -> Vec<libc::sock_filter> {
    program
        .into_iter()
        .map(|f| libc::sock_filter {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        })
        .collect()
}

fn compile() -> Result<Programs, BackendError> {
    let arch = target_arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    let mut clone_rules = Vec::new();
    for flag in NAMESPACE_FLAGS {
        let flag = flag as u64;
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )?;
        clone_rules.push(SeccompRule::new(vec![cond])?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    Ok(Programs {
        deny: to_libc(BpfProgram::try_from(deny)?),
        clone3: to_libc(BpfProgram::try_from(clone3)?),
    })
}

/// The compiled default programs (compiled on first use, before any fork).
pub fn programs() -> Result<&'static Programs, super::SandboxError> {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    if let Some(p) = PROGRAMS.get() {
        return Ok(p);
    }
    let compiled = compile().map_err(super::SandboxError::Seccomp)?;
    Ok(PROGRAMS.get_or_init(|| compiled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_programs_compile_for_this_architecture() {
        let p = programs().expect("seccomp programs compile");
        assert!(p.deny.len() > denied_syscalls().len());
        assert!(!p.clone3.is_empty());
    }
}
