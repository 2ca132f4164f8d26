// Runs a rate network exported from Python (docs/tutorials/cpp.md) with flexrnn's C++ core.
//
// The folder given on the command line holds sizes.txt ("n n_in n_out T B alpha") and the
// arrays as raw float64 in C (row-major) order: W (n, n), W_in (n, n_in), b (n),
// W_out (n_out, n), b_out (n_out), x0 (B, n), u (T, B, n_in). The program writes the
// outputs y (T, B, n_out) to y.bin in the same folder and prints the final output of
// each trial.
#include <flexrnn/flexrnn.hpp>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::vector<double> read_array(const std::string& path, std::size_t count) {
  std::ifstream in(path, std::ios::binary);
  std::vector<double> data(count);
  in.read(reinterpret_cast<char*>(data.data()), std::streamsize(count * sizeof(double)));
  if (!in || in.peek() != std::char_traits<char>::eof())
    throw std::runtime_error(path + ": expected exactly " + std::to_string(count) + " float64");
  return data;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FOLDER\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  using flexrnn::Index;
  Index n, n_in, n_out, T, B;
  double alpha;
  std::ifstream sizes(dir + "/sizes.txt");
  if (!(sizes >> n >> n_in >> n_out >> T >> B >> alpha))
    throw std::runtime_error(dir + "/sizes.txt: expected n n_in n_out T B alpha");

  const auto W = read_array(dir + "/W.bin", n * n);
  const auto W_in = read_array(dir + "/W_in.bin", n * n_in);
  const auto b = read_array(dir + "/b.bin", n);
  const auto W_out = read_array(dir + "/W_out.bin", n_out * n);
  const auto b_out = read_array(dir + "/b_out.bin", n_out);
  const auto x0 = read_array(dir + "/x0.bin", B * n);
  const auto u = read_array(dir + "/u.bin", T * B * n_in);

  // 1. The parameters: Eigen maps of the caller's row-major buffers (no copies).
  const flexrnn::RateRNNParams<double> params{
      flexrnn::CMatMap<double>(W.data(), n, n), flexrnn::CMatMap<double>(W_in.data(), n, n_in),
      b.data(), flexrnn::CMatMap<double>(W_out.data(), n_out, n), b_out.data()};
  // 2. The options: what RateRNN(tau, dt, phi, form, readout) sets in Python.
  flexrnn::RateOptions opt;
  opt.alpha = alpha;
  opt.phi = flexrnn::Phi::tanh;
  opt.form = flexrnn::Form::current;
  opt.readout = flexrnn::Readout::rate;
  // 3. The drive of this run: inputs (T, B, n_in) and initial states (B, n); gain 1.
  flexrnn::RateDrive<double> drive;
  drive.u = {u.data(), T, B, n_in};
  drive.x0 = x0.data();
  // 4. Output buffers owned by the caller: states, rates and outputs after each step.
  std::vector<double> x(T * B * n), r(T * B * n), y(T * B * n_out);
  const flexrnn::RateTrajectory<double> out{
      {x.data(), T, B, n}, {r.data(), T, B, n}, {y.data(), T, B, n_out}};
  flexrnn::rollout(params, opt, drive, out);

  std::ofstream(dir + "/y.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(y.data()), std::streamsize(y.size() * sizeof(double)));
  std::printf("ran n=%ld B=%ld T=%ld on %d threads; final output of each trial:", long(n),
              long(B), long(T), flexrnn::get_num_threads());
  for (Index k = 0; k < B; ++k) std::printf(" %+.3f", y[((T - 1) * B + k) * n_out]);
  std::printf("\n");
  return 0;
} catch (const std::exception& err) {
  std::fprintf(stderr, "error: %s\n", err.what());
  return 1;
}
