// Private precompiled header of the test suite.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
