//! PromQL parser, engine, functions and the promqltest runner.
