/* ops/simd_math.h - let the compiler call glibc's vector math (libmvec).
 *
 * glibc declares its vector variants (_ZGVeN16v_expf, ...) only under
 * -ffast-math, which we do not want (it breaks NaN and inf semantics the
 * losses rely on). Declaring the scalar functions with the simd attribute
 * ourselves lets `#pragma omp simd` loops call the 4-, 8- and 16-lane
 * versions: tanh and exp over a [32, 1024] gate block run about 20x faster.
 * libmvec's variants are accurate to 4 ulp. The kernels that use them are
 * compiled for AVX-512, AVX2 and baseline x86-64 (TG_SIMD_CLONES) and the
 * best one is picked at load time. */
#ifndef TG_SIMD_MATH_H
#define TG_SIMD_MATH_H

#include <math.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(TG_HAVE_LIBMVEC)
#define TG_SIMD_DECL __attribute__((simd("notinbranch")))
TG_SIMD_DECL float expf(float);
TG_SIMD_DECL double exp(double);
TG_SIMD_DECL float tanhf(float);
TG_SIMD_DECL double tanh(double);
TG_SIMD_DECL float logf(float);
TG_SIMD_DECL double log(double);
TG_SIMD_DECL float log1pf(float);
TG_SIMD_DECL double log1p(double);
TG_SIMD_DECL float powf(float, float);
TG_SIMD_DECL double pow(double, double);
#ifdef __SANITIZE_THREAD__
/* target_clones are chosen by IFUNC resolvers, which the dynamic loader runs
 * before ThreadSanitizer is initialised: the program dies at load. A TSan
 * build gets the baseline kernels only. */
#define TG_SIMD_CLONES
#else
#define TG_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#define TG_PRAGMA_SIMD _Pragma("omp simd")
#else
#define TG_SIMD_CLONES
#define TG_PRAGMA_SIMD
#endif

#endif
