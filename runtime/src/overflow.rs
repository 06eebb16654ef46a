//! TEMPORARY stub (replaced by the SIGSEGV handler from branch `stack`).
#[repr(C)]
pub(crate) struct RunningInfo {
    pub guard_lo: usize,
    pub guard_hi: usize,
    pub id: u64,
    pub name_ptr: *const u8,
    pub name_len: usize,
    pub stack_size: usize,
}
pub(crate) fn install() {}
pub(crate) fn ensure_altstack() {}
pub(crate) fn set_running(_info: *const RunningInfo) {}
