//! Interleaved repetitions: the two sides of every comparison take turns, many short
//! times, so that a machine whose speed drifts (a VM whose vCPUs the host moves) shifts
//! both sides alike, and each ratio is taken within one repetition.
//!
//! A [`Group`] holds kernels (each returns one number per call: ns per operation, or
//! items per second). [`Group::run`] calls every kernel once to warm up, then `reps`
//! times in a shuffled order per repetition, and keeps every sample. A ratio between
//! two kernels of one group is the median of the per-repetition ratios, with their
//! minimum and maximum as the spread.

/// The samples of one kernel, in repetition order.
#[derive(Debug, Clone)]
pub struct Series {
    /// The JSON key.
    pub key: &'static str,
    /// One value per repetition.
    pub values: Vec<f64>,
    /// The group it was measured in (ratios are paired only within one group).
    pub group: usize,
}

impl Series {
    /// The median.
    pub fn median(&self) -> f64 {
        median(&self.values)
    }

    /// (min, max).
    pub fn spread(&self) -> (f64, f64) {
        min_max(&self.values)
    }
}

/// The median of `v` (NaN if empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// (min, max) of `v` (NaN if empty).
pub fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::NAN, f64::NAN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// A paired ratio: `num[r] / den[r]` for every repetition `r`.
#[derive(Debug, Clone)]
pub struct Ratio {
    /// Every repetition's ratio.
    pub values: Vec<f64>,
}

impl Ratio {
    /// The ratio of two series measured in one group, repetition by repetition.
    /// `None` if they were measured in different groups.
    pub fn paired(num: &Series, den: &Series) -> Option<Ratio> {
        (num.group == den.group && num.values.len() == den.values.len()).then(|| Ratio {
            values: num
                .values
                .iter()
                .zip(&den.values)
                .map(|(a, b)| a / b)
                .collect(),
        })
    }

    /// The median ratio.
    pub fn median(&self) -> f64 {
        median(&self.values)
    }

    /// (min, max) of the ratios.
    pub fn spread(&self) -> (f64, f64) {
        min_max(&self.values)
    }

    /// The same ratio upside down.
    pub fn inverse(&self) -> Ratio {
        Ratio {
            values: self.values.iter().map(|v| 1.0 / v).collect(),
        }
    }
}

/// A kernel: one sample per call.
type Kernel<'a> = Box<dyn FnMut() -> f64 + 'a>;

/// Kernels measured together, interleaved.
pub struct Group<'a> {
    kernels: Vec<(&'static str, Kernel<'a>)>,
}

impl Default for Group<'_> {
    fn default() -> Self {
        Group::new()
    }
}

impl<'a> Group<'a> {
    /// An empty group.
    pub fn new() -> Self {
        Group {
            kernels: Vec::new(),
        }
    }

    /// Adds a kernel: `run` returns one sample per call.
    pub fn add(&mut self, key: &'static str, run: impl FnMut() -> f64 + 'a) -> &mut Self {
        self.kernels.push((key, Box::new(run)));
        self
    }

    /// One warm-up call of each kernel, then `reps` repetitions, each calling every
    /// kernel once in an order shuffled per repetition (seeded, so runs are
    /// repeatable). `group` tags the series.
    pub fn run(mut self, reps: usize, group: usize, seed: u64) -> Vec<Series> {
        let k = self.kernels.len();
        for (_, run) in &mut self.kernels {
            let _ = run();
        }
        let mut values = vec![Vec::with_capacity(reps); k];
        let mut rng = seed | 1;
        let mut order: Vec<usize> = (0..k).collect();
        for _ in 0..reps {
            // Fisher-Yates with xorshift64.
            for i in (1..k).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                order.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            for &i in &order {
                values[i].push((self.kernels[i].1)());
            }
        }
        self.kernels
            .iter()
            .zip(values)
            .map(|((key, _), values)| Series { key, values, group })
            .collect()
    }
}
