// Private: work spread over threads with the results consumed in input order. The calling thread
// produces the items and consumes the results (so that neither needs locking); `workers` threads
// transform them. At most `max_in_flight` items are between production and consumption, so memory
// stays bounded whatever the input's size. The output therefore does not depend on the number of
// workers. Used by preprocess() (data/preprocess.cpp): lines in, tokenized examples out.
//
//   run_ordered<Chunk, Result>(workers, 4 * workers,
//       [&](Chunk& c) { return read_next(c); },           // false: no more input
//       [&](const Chunk& c) { return tokenize(c); },      // on a worker thread
//       [&](Result& r) { write(r); });                    // in input order
//
// An exception from any of the three stops the workers, and the first one is rethrown to the
// caller once every thread has been joined.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace pyramidion {
namespace detail {

template <typename Item, typename Result>
void run_ordered(int64_t workers, int64_t max_in_flight, const std::function<bool(Item&)>& produce,
                 const std::function<Result(const Item&)>& work, const std::function<void(Result&)>& consume) {
  if (workers < 1 || max_in_flight < 1)
    throw std::invalid_argument("run_ordered: workers and max_in_flight must be >= 1, got " +
                                std::to_string(workers) + " and " + std::to_string(max_in_flight));
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::pair<int64_t, Item>> todo;
  std::map<int64_t, Result> done;
  bool closed = false, stop = false;
  std::exception_ptr failure;

  const auto worker = [&] {
    for (;;) {
      std::pair<int64_t, Item> item;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return stop || closed || !todo.empty(); });
        if (stop || todo.empty()) return;
        item = std::move(todo.front());
        todo.pop_front();
      }
      try {
        Result result = work(item.second);
        std::lock_guard<std::mutex> lock(mutex);
        done.emplace(item.first, std::move(result));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!failure) failure = std::current_exception();
        stop = true;
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> threads;
  const auto join_all = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    changed.notify_all();
    for (auto& t : threads) t.join();
  };
  try {
    for (int64_t i = 0; i < workers; ++i) threads.emplace_back(worker);
    int64_t produced = 0, consumed = 0;
    bool end = false;
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] {
        return failure || done.count(consumed) > 0 || (!end && produced - consumed < max_in_flight) ||
               (end && consumed == produced);
      });
      if (failure) std::rethrow_exception(failure);
      if (const auto next = done.find(consumed); next != done.end()) {
        Result result = std::move(next->second);
        done.erase(next);
        lock.unlock();
        consume(result);
        ++consumed;
        continue;
      }
      if (end) break;  // and everything consumed
      lock.unlock();
      Item item;
      const bool more = produce(item);
      lock.lock();
      if (more) {
        todo.emplace_back(produced++, std::move(item));
      } else {
        end = closed = true;
      }
      lock.unlock();
      changed.notify_all();
    }
  } catch (...) {
    join_all();
    throw;
  }
  join_all();
}

}  // namespace detail
}  // namespace pyramidion
