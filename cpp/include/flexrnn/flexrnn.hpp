// flexrnn: the whole C++ library.
#pragma once

#include "flexrnn/config.hpp"
#include "flexrnn/dynamics.hpp"
#include "flexrnn/evolution.hpp"
#include "flexrnn/force.hpp"
#include "flexrnn/hebbian.hpp"
#include "flexrnn/interrupt.hpp"
#include "flexrnn/loss.hpp"
#include "flexrnn/lstm.hpp"
#include "flexrnn/mop.hpp"
#include "flexrnn/nmrnn.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/rate_rnn.hpp"
#include "flexrnn/trial_step.hpp"
