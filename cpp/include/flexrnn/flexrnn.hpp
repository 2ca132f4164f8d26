// flexrnn: the whole C++ library.
#pragma once

#include "flexrnn/config.hpp"
#include "flexrnn/dynamics.hpp"
#include "flexrnn/loss.hpp"
#include "flexrnn/lstm.hpp"
#include "flexrnn/nmrnn.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/rate_rnn.hpp"
