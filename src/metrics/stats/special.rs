//! Special functions behind the p-values: log-gamma, the regularized incomplete beta and gamma
//! functions, and from them the Student t and standard normal tails. Algorithms from Press et al.,
//! *Numerical Recipes* (3rd ed.) §6.1–6.4 (Lanczos log-gamma; series and Lentz continued
//! fractions), accurate to about 1e-14 relative; unit tests compare against scipy.special.

use std::f64::consts::PI;

const EPS: f64 = 1e-16;
const TINY: f64 = 1e-300;
const MAX_ITER: usize = 10_000;

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; reflection below 0.5).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Regularized incomplete beta I_x(a, b) for a, b > 0 and 0 ≤ x ≤ 1.
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // The continued fraction converges fast only on this side of the mean; use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in
            [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))]
        {
            d = 1.0 + aa * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Regularized upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a) for a > 0, x ≥ 0.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < a + 1.0 {
        1.0 - gamma_p_series(a, x)
    } else {
        gamma_q_cf(a, x)
    }
}

fn gamma_p_series(a: f64, x: f64) -> f64 {
    let mut ap = a;
    let mut del = 1.0 / a;
    let mut sum = del;
    for _ in 0..MAX_ITER {
        ap += 1.0;
        del *= x / ap;
        sum += del;
        if del.abs() < sum.abs() * EPS {
            break;
        }
    }
    sum * (-x + a * x.ln() - ln_gamma(a)).exp()
}

fn gamma_q_cf(a: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_ITER {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    (-x + a * x.ln() - ln_gamma(a)).exp() * h
}

/// Complementary error function, erfc(x) = Q(1/2, x²) for x ≥ 0.
pub fn erfc(x: f64) -> f64 {
    if x >= 0.0 {
        gamma_q(0.5, x * x)
    } else {
        2.0 - gamma_q(0.5, x * x)
    }
}

/// P(Z > z) for a standard normal Z.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// P(Z ≤ z) for a standard normal Z.
pub fn normal_cdf(z: f64) -> f64 {
    normal_sf(-z)
}

/// P(T > t) for Student's t with `df` > 0 degrees of freedom:
/// ½·I_{df/(df+t²)}(df/2, ½) for t ≥ 0, by symmetry otherwise.
pub fn student_t_sf(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    let tail = 0.5 * beta_inc(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64, tol: f64) {
        assert!(((a - b) / b).abs() < tol, "{a} vs {b}");
    }

    #[test]
    fn matches_scipy_special() {
        // Values from scipy 1.17.1: scipy.special.gammaln, betainc, erfc, and scipy.stats.t.sf /
        // norm.sf, printed with repr().
        rel(ln_gamma(0.5), 0.5723649429247, 1e-14);
        rel(ln_gamma(10.0), 12.801827480081469, 1e-14);
        rel(ln_gamma(123.4), 469.3360974421906, 1e-14);
        rel(beta_inc(2.5, 0.5, 0.3), 0.018927124071945658, 1e-12);
        rel(beta_inc(5.0, 0.5, 0.95), 0.48479121309839684, 1e-12);
        rel(beta_inc(40.0, 0.5, 0.7), 1.006464984420587e-07, 1e-10);
        rel(erfc(0.5), 0.4795001221869535, 1e-14);
        rel(erfc(5.0), 1.5374597944280347e-12, 1e-12);
        rel(erfc(-1.0), 1.8427007929497148, 1e-14);
        rel(normal_sf(1.959963984540054), 0.025, 1e-12);
        rel(normal_sf(6.0), 9.865876450376946e-10, 1e-11);
        rel(student_t_sf(2.0, 5.0), 0.050969739414929174, 1e-12);
        rel(student_t_sf(-1.3, 12.0), 0.8909914144582429, 1e-12);
        rel(student_t_sf(8.0, 100.0), 1.1364324038640347e-12, 1e-9);
        rel(student_t_sf(0.7, 1.0), 0.30559988778578523, 1e-12);
        assert_eq!(student_t_sf(f64::INFINITY, 3.0), 0.0);
    }
}
