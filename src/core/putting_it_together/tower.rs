//! The query tower g(z): a map from a user's context features z ∈ ℝᶜ to a query vector in ℝᵈ,
//! either linear (g(z) = Γz + β, the PRR lesson's g with continuous contexts) or a small MLP
//! (L hidden layers of width w, ReLU or GELU), with hand-written backpropagation.
//!
//! The weights live in a slice of the owner's flat parameter vector (so that one Adam loop moves
//! them with the rest of the model): layer l is W_l (out × in, row-major) then b_l (out).
//!
//! The passes compute in f32, as the notebooks' TensorFlow and PyTorch models do: the browser's
//! vector lanes hold four f32 where they hold two f64, and the passes are most of a deep
//! tower's training (a drag of the capstone's hidden width retrains five). The parameters, Adam's
//! moments and the PRR heads stay in f64. f32 sums are as reproducible as f64 ones (IEEE
//! arithmetic in a fixed order, no fused multiply-adds, GELU's tanh from libm): the same bits
//! natively and in wasm.

use crate::core::rng::{self, Rng};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// GELU, tanh approximation (Hendrycks & Gimpel): ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    Gelu,
}

const GELU_C: f32 = 0.797_884_6; // √(2/π)
const GELU_A: f32 = 0.044_715;

impl Activation {
    #[inline]
    fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Gelu => 0.5 * x * (1.0 + libm::tanhf(GELU_C * (x + GELU_A * x * x * x))),
        }
    }

    /// The derivative at pre-activation x.
    #[inline]
    fn derivative(self, x: f32) -> f32 {
        match self {
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Gelu => {
                let t = libm::tanhf(GELU_C * (x + GELU_A * x * x * x));
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * x * x)
            }
        }
    }
}

/// The shape of a tower: inputs, hidden widths (empty: linear), outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Tower {
    pub inputs: usize,
    pub hidden: Vec<usize>,
    pub outputs: usize,
    pub activation: Activation,
    /// Each layer's shape and where its weights start, worked out once (every row's forward and
    /// backward pass reads them).
    layers: Vec<Layer>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Layer {
    fan_in: usize,
    fan_out: usize,
    /// Index of W_l in the tower's slice; b_l follows it.
    offset: usize,
}

/// The values a forward pass leaves for the backward pass: each layer's input and, for hidden
/// layers, its pre-activation.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// inputs[l]: the input of layer l (inputs[0] = z).
    inputs: Vec<Vec<f32>>,
    /// pre[l]: layer l's pre-activation (hidden layers only).
    pre: Vec<Vec<f32>>,
    /// The output layer's values, before they are widened into `output`.
    last: Vec<f32>,
    /// g(z), in f64 for the heads that read it.
    pub output: Vec<f64>,
    /// Scratch for the backward pass.
    delta: Vec<f32>,
    next_delta: Vec<f32>,
}

/// The tower's weights as the passes read them, in f32: for the forward pass each layer's W
/// transposed (in × out, so that a tile of outputs has its weights for one input side by side,
/// summed in vector lanes), then its b, at the same offsets as in the parameters; for the
/// backward pass W as it is. Made from the parameters once for every pass until they change (see
/// [`Tower::pass_weights`]).
#[derive(Clone, Debug, Default)]
pub struct PassWeights {
    transposed: Vec<f32>,
    rows: Vec<f32>,
}

impl Tower {
    fn new(inputs: usize, hidden: Vec<usize>, outputs: usize, activation: Activation) -> Tower {
        let widths: Vec<usize> = std::iter::once(inputs).chain(hidden.iter().copied()).chain([outputs]).collect();
        let mut offset = 0;
        let layers = widths
            .windows(2)
            .map(|w| {
                let layer = Layer { fan_in: w[0], fan_out: w[1], offset };
                offset += w[0] * w[1] + w[1];
                layer
            })
            .collect();
        Tower { inputs, hidden, outputs, activation, layers }
    }

    pub fn linear(inputs: usize, outputs: usize) -> Tower {
        Tower::new(inputs, Vec::new(), outputs, Activation::Relu)
    }

    pub fn mlp(inputs: usize, layers: usize, width: usize, outputs: usize, activation: Activation) -> Tower {
        Tower::new(inputs, vec![width; layers], outputs, activation)
    }

    pub fn is_linear(&self) -> bool {
        self.hidden.is_empty()
    }

    /// Number of weights and biases.
    pub fn len(&self) -> usize {
        self.layers.iter().map(|l| l.fan_in * l.fan_out + l.fan_out).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Multiply-adds of one forward pass (a backward pass costs about twice that).
    pub fn flops(&self) -> usize {
        self.layers.iter().map(|l| l.fan_in * l.fan_out).sum()
    }

    /// He initialisation N(0, 2/fan_in) for layers followed by an activation, N(0, 1/fan_in) for
    /// the output layer; biases 0.
    pub fn init(&self, params: &mut [f64], rng: &mut Rng) {
        for (l, &Layer { fan_in, fan_out, offset }) in self.layers.iter().enumerate() {
            let gain = if l + 1 < self.layers.len() { 2.0 } else { 1.0 };
            let sd = (gain / fan_in as f64).sqrt();
            for w in &mut params[offset..offset + fan_in * fan_out] {
                *w = sd * rng::normal(rng);
            }
            params[offset + fan_in * fan_out..offset + fan_in * fan_out + fan_out].iter_mut().for_each(|b| *b = 0.0);
        }
    }

    /// The passes' f32 copies of `params` (the tower's slice).
    pub fn pass_weights(&self, params: &[f64]) -> PassWeights {
        let mut transposed = Vec::with_capacity(self.len());
        for &Layer { fan_in, fan_out, offset } in &self.layers {
            let (weights, biases) = params[offset..offset + fan_in * fan_out + fan_out].split_at(fan_in * fan_out);
            transposed.extend((0..fan_in).flat_map(|i| weights[i..].iter().step_by(fan_in).map(|w| *w as f32)));
            transposed.extend(biases.iter().map(|b| *b as f32));
        }
        PassWeights { transposed, rows: params.iter().map(|w| *w as f32).collect() }
    }

    /// g(z) into `trace.output`, keeping what the backward pass needs; `pass_weights`
    /// are [`Tower::pass_weights`] of the parameters.
    pub fn forward(&self, pass_weights: &PassWeights, z: &[f64], trace: &mut Trace) {
        let params = &pass_weights.transposed;
        let layers = self.layers.len();
        trace.inputs.resize(layers, Vec::new());
        trace.pre.resize(layers - 1, Vec::new());
        trace.inputs[0].clear();
        trace.inputs[0].extend(z.iter().map(|x| *x as f32));
        for (l, &Layer { fan_in, fan_out, offset: at }) in self.layers.iter().enumerate() {
            let (transposed, biases) = params[at..at + fan_in * fan_out + fan_out].split_at(fan_in * fan_out);
            let mut out = std::mem::take(if l + 1 < layers { &mut trace.pre[l] } else { &mut trace.last });
            out.clear();
            affine(transposed, biases, &trace.inputs[l], &mut out);
            if l + 1 < layers {
                let mut next = std::mem::take(&mut trace.inputs[l + 1]);
                next.clear();
                next.extend(out.iter().map(|x| self.activation.apply(*x)));
                trace.inputs[l + 1] = next;
                trace.pre[l] = out;
            } else {
                trace.last = out;
            }
        }
        trace.output.clear();
        trace.output.extend(trace.last.iter().map(|g| *g as f64));
    }

    /// Add `weight` × ∂L/∂params to `grad` (the tower's slice, dense, in f32), given ∂L/∂g(z) =
    /// `d_output` and the trace of the forward pass at this z with the same weights.
    pub fn backward(&self, pass_weights: &PassWeights, trace: &mut Trace, d_output: &[f64], weight: f64, grad: &mut [f32]) {
        let params = &pass_weights.rows;
        let mut delta = std::mem::take(&mut trace.delta);
        let mut next = std::mem::take(&mut trace.next_delta);
        delta.clear();
        delta.extend(d_output.iter().map(|d| (d * weight) as f32));
        for l in (0..self.layers.len()).rev() {
            let Layer { fan_in, fan_out, offset: at } = self.layers[l];
            let input = &trace.inputs[l];
            for (o, d) in delta.iter().enumerate() {
                if *d == 0.0 {
                    continue;
                }
                let row = &mut grad[at + o * fan_in..at + (o + 1) * fan_in];
                row.iter_mut().zip(input).for_each(|(g, x)| *g += d * x);
                grad[at + fan_in * fan_out + o] += d;
            }
            if l == 0 {
                break;
            }
            // δ of the layer below: Wᵀδ times the activation's derivative at its pre-activation.
            next.clear();
            next.resize(fan_in, 0.0);
            combine_rows::<true>(&params[at..at + fan_in * fan_out], &delta, 0.0, &mut next);
            for (n, x) in next.iter_mut().zip(&trace.pre[l - 1]) {
                *n *= self.activation.derivative(*x);
            }
            std::mem::swap(&mut delta, &mut next);
        }
        trace.delta = delta;
        trace.next_delta = next;
    }
}

/// `out` = W x + b, with W given transposed (`transposed`: x's length rows of b's length). Each
/// output's sum is that of W's row by `iter().sum()` (from −0.0, in index order), bit for bit (see
/// [`combine_rows`]; the pass, row by row, was scalar and latency-bound: half the capstone's drag
/// at width 128 natively).
fn affine(transposed: &[f32], biases: &[f32], x: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.resize(biases.len(), 0.0);
    combine_rows::<false>(transposed, x, -0.0, out);
    // sum + b: b + sum, as IEEE 754 addition commutes.
    out.iter_mut().zip(biases).for_each(|(sum, b)| *sum += b);
}

/// `out` = Σ_r c_r · M_r over the rows M_r of `matrix` (each `out.len()` long), `coefficients`
/// c: each entry one sum from `start`, in row order, skipping the rows whose c_r is zero when
/// `SKIP_ZEROS`. Tiles of 16, 8, 4 and 2 entries are summed side by side, their values in one row
/// contiguous, so that the adds run in vector lanes and that many chains overlap; every entry's
/// sum is still the plain loop's, bit for bit.
// `first + 1 <= width` reads as the other tiles' test.
#[allow(clippy::int_plus_one)]
fn combine_rows<const SKIP_ZEROS: bool>(matrix: &[f32], coefficients: &[f32], start: f32, out: &mut [f32]) {
    let width = out.len();
    let mut first = 0;
    // Tiles of 16 while they fit, then at most one each of 8, 4, 2 and 1.
    macro_rules! tiles {
        ($($n:literal),*) => {$(
            while first + $n <= width {
                out[first..first + $n].copy_from_slice(&combine_tile::<$n, SKIP_ZEROS>(matrix, width, coefficients, first, start));
                first += $n;
            }
        )*};
    }
    tiles!(16, 8, 4, 2, 1);
}

/// Entries `first`..`first + N` of [`combine_rows`].
#[inline(always)]
fn combine_tile<const N: usize, const SKIP_ZEROS: bool>(
    matrix: &[f32],
    width: usize,
    coefficients: &[f32],
    first: usize,
    start: f32,
) -> [f32; N] {
    let mut sums = [start; N];
    for (row, &c) in matrix.chunks_exact(width).zip(coefficients) {
        if SKIP_ZEROS && c == 0.0 {
            continue;
        }
        let row: &[f32; N] = row[first..first + N].try_into().expect("N entries");
        for r in 0..N {
            sums[r] += row[r] * c;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::Stream;

    /// L = Σ_j c_j g_j(z): ∂L/∂g = c; each weight's analytic gradient against central differences.
    #[test]
    fn backward_matches_finite_differences() {
        for tower in [
            Tower::linear(3, 2),
            Tower::mlp(3, 1, 5, 2, Activation::Relu),
            Tower::mlp(3, 2, 4, 2, Activation::Gelu),
            Tower::mlp(3, 3, 4, 2, Activation::Relu),
        ] {
            let mut rng = rng::seeded(5, Stream::Model);
            let mut params = vec![0.0; tower.len()];
            tower.init(&mut params, &mut rng);
            // Biases away from 0 so that ReLU kinks are not at the evaluation point.
            params.iter_mut().for_each(|p| *p += 0.05 * rng::normal(&mut rng));
            let z = [0.7, -1.2, 0.4];
            let c = [0.9, -0.3];
            let loss = |p: &[f64]| {
                let mut t = Trace::default();
                tower.forward(&tower.pass_weights(p), &z, &mut t);
                t.output.iter().zip(&c).map(|(g, c)| g * c).sum::<f64>()
            };
            let mut trace = Trace::default();
            let weights = tower.pass_weights(&params);
            tower.forward(&weights, &z, &mut trace);
            let mut grad = vec![0.0f32; tower.len()];
            tower.backward(&weights, &mut trace, &c, 2.0, &mut grad);
            for i in 0..params.len() {
                // A step large enough for the f32 passes' rounding (about 1e-7 of the loss).
                let h = 1e-3;
                let (mut plus, mut minus) = (params.clone(), params.clone());
                plus[i] += h;
                minus[i] -= h;
                let numeric = 2.0 * (loss(&plus) - loss(&minus)) / (2.0 * h);
                let analytic = grad[i] as f64;
                assert!((numeric - analytic).abs() < 1e-3 * (1.0 + numeric.abs()), "{tower:?} param {i}: {numeric} vs {analytic}");
            }
        }
    }

    /// Tiles of outputs give each row's plain `sum`, bit for bit (zeros of both signs too).
    #[test]
    fn affine_sums_each_row_as_one_sum_would() {
        let mut rng = rng::seeded(9, Stream::Model);
        for (fan_in, fan_out) in
            [(1, 1), (3, 4), (5, 7), (32, 32), (6, 9), (6, 13), (32, 8), (7, 20), (6, 128), (128, 128), (33, 31), (2, 47)]
        {
            let mut draw = |n: usize| -> Vec<f32> {
                (0..n)
                    .map(|i| if i % 5 == 0 { [0.0, -0.0][i % 2] } else { (rng::normal(&mut rng) * 10f64.powi((i % 7) as i32 - 3)) as f32 })
                    .collect()
            };
            let (weights, biases, x) = (draw(fan_in * fan_out), draw(fan_out), draw(fan_in));
            let transposed: Vec<f32> =
                (0..fan_in).flat_map(|i| (0..fan_out).map(move |o| (i, o))).map(|(i, o)| weights[o * fan_in + i]).collect();
            let mut out = Vec::new();
            affine(&transposed, &biases, &x, &mut out);
            let plain: Vec<f32> =
                weights.chunks_exact(fan_in).zip(&biases).map(|(row, b)| b + row.iter().zip(&x).map(|(w, x)| w * x).sum::<f32>()).collect();
            assert_eq!(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    /// The backward pass's Wᵀδ: each entry the plain loop's sum, skipping zero coefficients.
    #[test]
    fn combined_rows_skip_zero_coefficients_as_the_plain_loop_does() {
        let mut rng = rng::seeded(10, Stream::Model);
        for (rows, width) in [(1, 1), (4, 3), (8, 128), (128, 128), (13, 31), (2, 47)] {
            let matrix: Vec<f32> = (0..rows * width).map(|_| rng::normal(&mut rng) as f32).collect();
            let coefficients: Vec<f32> =
                (0..rows).map(|i| if i % 3 == 0 { [0.0, -0.0][i % 2] } else { rng::normal(&mut rng) as f32 }).collect();
            let mut plain = vec![0.0; width];
            for (row, c) in matrix.chunks_exact(width).zip(&coefficients) {
                if *c == 0.0 {
                    continue;
                }
                plain.iter_mut().zip(row).for_each(|(n, w)| *n += c * w);
            }
            let mut out = vec![f32::NAN; width];
            combine_rows::<true>(&matrix, &coefficients, 0.0, &mut out);
            assert_eq!(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn linear_tower_is_an_affine_map() {
        let tower = Tower::linear(2, 2);
        assert_eq!((tower.len(), tower.flops()), (6, 4));
        // W = [[1, 2], [3, 4]], b = [0.5, -1].
        let params = [1.0, 2.0, 3.0, 4.0, 0.5, -1.0];
        let mut trace = Trace::default();
        tower.forward(&tower.pass_weights(&params), &[1.0, -1.0], &mut trace);
        assert_eq!(trace.output, vec![-0.5, -2.0]);
        let mlp = Tower::mlp(6, 2, 32, 8, Activation::Relu);
        assert_eq!(mlp.len(), 6 * 32 + 32 + 32 * 32 + 32 + 32 * 8 + 8);
    }
}
