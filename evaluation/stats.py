"""
The few statistics the report needs, in plain Python (no scipy): Student's t distribution, the paired
t-interval and t-test (over seeds, or over items), and Holm's correction across a family of tests.

Student's t CDF comes from the regularized incomplete beta function,
    P(|T| > t) = I_x(df/2, 1/2)  with x = df / (df + t^2),
evaluated with its continued fraction (modified Lentz); the quantile inverts the CDF by bisection.
"""

import functools
import math
import statistics

RELATIVE_SD = 1e-9  # an sd at most this times the largest |value| is no spread (t_interval)


def incomplete_beta(x, a, b):
    """The regularized incomplete beta function I_x(a, b) for 0 <= x <= 1, a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    # I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * 1 / (1 + d1 / (1 + d2 / (1 + ...))); the fraction converges
    # fast for x < (a + 1) / (a + b + 2), and I_x(a, b) = 1 - I_{1-x}(b, a) covers the other side
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - incomplete_beta(1.0 - x, b, a)
    front = math.exp(a * math.log(x) + b * math.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)) / a
    tiny = 1e-300
    f, c, d = tiny, tiny, 0.0  # Lentz: f is the fraction so far, a product of c * d factors (0 stands as tiny)
    for i in range(400):
        m = i // 2
        if i == 0:
            term = 1.0
        elif i % 2 == 0:  # d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m))
            term = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:  # d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
            term = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + term * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + term / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            return front * f
    raise ArithmeticError(f"incomplete beta: continued fraction did not converge (x={x}, a={a}, b={b})")


def t_two_sided_p(t, df):
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    return incomplete_beta(df / (df + t * t), df / 2.0, 0.5)


def t_cdf(t, df):
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * t_two_sided_p(t, df)
    return 1.0 - tail if t >= 0 else tail


@functools.lru_cache(maxsize=None)  # the report asks for the same few (p, df) thousands of times
def t_quantile(p, df):
    """The t with P(T <= t) = p, by bisection on the CDF (to about 1e-12 relative)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must be in (0, 1), not {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
        if high - low <= 1e-12 * high:
            break
    return 0.5 * (low + high)


def t_interval(values, confidence=0.95):
    """The mean of values and Student's t-test of mean = 0: (n, mean, (low, high) of the two-sided interval,
    two-sided p). With one value there is no spread: interval and p are None.

    Values that do not spread (all equal, or equal up to float rounding) give no interval and p = nan
    ("untestable"): the t-test's p goes to 0 as the sd goes to 0, yet an sd of 0 is no evidence, only a
    sign that the measure is discrete and moved the same step in every seed (one item out of 150 flips in
    each). An exact sign-flip permutation test would accept such data, but its smallest two-sided p with
    five seeds is 2 / 2^5 = 1/16, so it could never reject at .05 for any row; the t-test keeps its power
    where the data spread and says nothing where they do not. "Do not spread": sd at most RELATIVE_SD
    times the largest |value| (float noise is ~1e-16 relative; a real spread of accuracies is >= 1/n)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return n, mean, None, None
    sd = statistics.stdev(values)
    if sd <= RELATIVE_SD * max(abs(v) for v in values):
        return n, mean, None, math.nan
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return n, mean, (mean - half, mean + half), t_two_sided_p(mean / (sd / math.sqrt(n)), n - 1)


def holm(p_values, alpha=0.05):
    """Holm's step-down over a family of p-values: (adjusted p-values, survives at family-wise alpha), in
    the order given. Adjusted p of the i-th smallest = max over j <= i of min(1, (m - j + 1) p_(j)).
    An untestable member (p nan or None) stays in the family (m counts every declared member) as p = 1."""
    p_values = [1.0 if p is None or math.isnan(p) else p for p in p_values]
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [None] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted, [a <= alpha for a in adjusted]
