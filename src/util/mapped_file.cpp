// MappedFile (see mapped_file.h).
#include "util/mapped_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace pyramidion {
namespace detail {
namespace {

// The mappings the SIGBUS handler may repair: a fixed table of atomics, which a signal handler can
// read without a lock. A slot is free while `end` is 0.
constexpr int kSlots = 4096;
struct Slot {
  std::atomic<uintptr_t> begin{0}, end{0};
  std::atomic<bool> faulted{false};
  std::atomic<bool> taken{false};
};
Slot g_slots[kSlots];
uintptr_t g_page_size = 4096;
struct sigaction g_previous {};

extern "C" void on_sigbus(int signal, siginfo_t* info, void* context) {
  const auto address = reinterpret_cast<uintptr_t>(info->si_addr);
  for (auto& slot : g_slots) {
    const uintptr_t end = slot.end.load(std::memory_order_acquire);
    if (end == 0 || address < slot.begin.load(std::memory_order_acquire) || address >= end) continue;
    // A page of zeros where the file's page was: the faulting read succeeds when it is retried.
    void* page = reinterpret_cast<void*>(address & ~(g_page_size - 1));
    if (::mmap(page, g_page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
      slot.faulted.store(true, std::memory_order_release);
      return;
    }
    break;
  }
  // Not one of ours (or beyond repair): what would have happened without this handler.
  if (g_previous.sa_flags & SA_SIGINFO) {
    g_previous.sa_sigaction(signal, info, context);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(signal);
    return;
  }
  ::signal(SIGBUS, SIG_DFL);  // the faulting instruction runs again and is killed by it
}

void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_page_size = static_cast<uintptr_t>(::sysconf(_SC_PAGE_SIZE));
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, &g_previous);
  });
}

int take_slot(const void* data, size_t size) {
  for (int i = 0; i < kSlots; ++i) {
    bool free = false;
    if (!g_slots[i].taken.compare_exchange_strong(free, true)) continue;
    g_slots[i].faulted.store(false);
    g_slots[i].begin.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
    g_slots[i].end.store(reinterpret_cast<uintptr_t>(data) + size, std::memory_order_release);
    return i;
  }
  return -1;  // more mappings than slots: this one is unguarded (SIGBUS as before)
}

void free_slot(int i) {
  if (i < 0) return;
  g_slots[i].end.store(0, std::memory_order_release);
  g_slots[i].begin.store(0, std::memory_order_release);
  g_slots[i].taken.store(false, std::memory_order_release);
}

}  // namespace

MappedFile::MappedFile(const std::string& path, Access access) : path_(path) {
  const auto fail = [&](const char* what) {
    return std::runtime_error("cannot map '" + path + "': " + what + ": " + std::strerror(errno));
  };
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw fail("open");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const auto error = fail("stat");
    release();
    throw error;
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    install_handler();
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) {
      const auto error = fail("mmap");
      size_ = 0;
      release();
      throw error;
    }
    ::madvise(p, size_, access == Access::random ? MADV_RANDOM : MADV_SEQUENTIAL);  // a hint only
    data_ = static_cast<const unsigned char*>(p);
    slot_ = take_slot(data_, size_);
  }
}

bool MappedFile::faulted() const { return slot_ >= 0 && g_slots[slot_].faulted.load(std::memory_order_acquire); }

void MappedFile::check_unchanged() const {
  if (fd_ < 0) return;
  const auto changed = [&](const std::string& how) {
    return FileChanged("'" + path_ + "' changed while it was in use (" + how +
                       "): a file must not be modified while a job reads it");
  };
  if (faulted()) throw changed("pages of it are gone: it was truncated");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw changed(std::string("cannot stat it: ") + std::strerror(errno));
  if (static_cast<size_t>(st.st_size) != size_)
    throw changed("it is now " + std::to_string(st.st_size) + " bytes, " + std::to_string(size_) +
                  " when it was opened");
}

void MappedFile::release() {
  free_slot(slot_);  // before the range is unmapped and may be reused
  slot_ = -1;
  if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  size_ = 0;
  fd_ = -1;
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::exchange(other.fd_, -1)),
      slot_(std::exchange(other.slot_, -1)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::exchange(other.fd_, -1);
    slot_ = std::exchange(other.slot_, -1);
  }
  return *this;
}

}  // namespace detail
}  // namespace pyramidion
