//! Run-time choice of vector width for plain loops (shared by the depthwise convolution,
//! the Winograd transforms and the max-pool scan).

/// Runs `f` (an `#[inline(always)]` closure over plain loops) compiled for AVX-512F or
/// AVX2 when the CPU has them, so its loops vectorise 16 or 8 lanes wide; the release
/// binary itself targets baseline x86-64 (4-lane SSE), so it runs on any x86-64. The
/// arithmetic is the same in every version (no FMA contraction), so results do not
/// depend on the CPU.
#[inline(always)]
pub(crate) fn with_wide_vectors<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}
