// Embeds flexrnn's C++ core in a stand-alone program: a random chaotic rate
// network driven by a pulse, run for a batch of noisy trials, using the library
// installed with the Python package (find_package(flexrnn)).
#include <flexrnn/flexrnn.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  using flexrnn::Index;
  const Index n = 200, n_in = 1, n_out = 1, B = 4, T = 300;
  const double g = 1.5;

  // Parameters: W ~ N(0, g^2/n), W_in ~ N(0, 1), W_out ~ N(0, 1/n), as RateRNN.random does.
  std::mt19937_64 gen(1);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> W(n * n), W_in(n * n_in), b(n, 0.0), W_out(n_out * n), b_out(n_out, 0.0);
  for (double& w : W) w = normal(gen) * g / std::sqrt(double(n));
  for (double& w : W_in) w = normal(gen);
  for (double& w : W_out) w = normal(gen) / std::sqrt(double(n));

  // Inputs: a pulse of height 1 during steps 10..19 in every trial; x0 = 0.
  std::vector<double> u(T * B * n_in, 0.0), x0(B * n, 0.0);
  for (Index t = 10; t < 20; ++t)
    for (Index k = 0; k < B; ++k) u[t * B + k] = 1.0;

  flexrnn::RateRNNParams<double> params{
      flexrnn::CMatMap<double>(W.data(), n, n), flexrnn::CMatMap<double>(W_in.data(), n, n_in),
      b.data(), flexrnn::CMatMap<double>(W_out.data(), n_out, n), b_out.data()};
  flexrnn::RateOptions opt;
  opt.alpha = 0.1;
  opt.noise_std = 0.05;
  opt.seed = 42;
  flexrnn::RateDrive<double> drive;
  drive.u = {u.data(), T, B, n_in};
  drive.x0 = x0.data();

  std::vector<double> x(T * B * n), r(T * B * n), y(T * B * n_out);
  const flexrnn::RateTrajectory<double> out{{x.data(), T, B, n}, {r.data(), T, B, n},
                                            {y.data(), T, B, n_out}};
  flexrnn::rollout(params, opt, drive, out);

  const flexrnn::BuildInfo info = flexrnn::build_info();
  std::printf("flexrnn %s (openmp %d, simd %s), %d threads\n", info.version.c_str(), info.openmp,
              info.simd.c_str(), flexrnn::get_num_threads());
  double var = 0.0;
  for (Index i = 0; i < n; ++i) var += x[((T - 1) * B) * n + i] * x[((T - 1) * B) * n + i];
  std::printf("n=%ld B=%ld T=%ld  y[T-1] of trial 0: %.6f  mean x^2 at T-1: %.4f\n", long(n),
              long(B), long(T), y[(T - 1) * B * n_out], var / double(n));
  return std::isfinite(var) ? 0 : 1;
}
