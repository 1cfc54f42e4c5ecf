// cxx_thread_local: C++ thread_local objects with constructors and
// destructors, std::thread, std::mutex, std::condition_variable, futures,
// and exceptions thrown and caught inside threads (also across a context
// switch).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

static void fail(const char *file, int line, const std::string &msg)
{
    std::string s = std::string("FAIL cxx_thread_local (") + file + ":" +
                    std::to_string(line) + "): " + msg + "\n";
    ssize_t w = write(2, s.data(), s.size());
    (void)w;
    _exit(1);
}
#define CHECK(c)                                                           \
    do {                                                                   \
        if (!(c))                                                          \
            fail(__FILE__, __LINE__, "check failed: " #c);                 \
    } while (0)
#define CHECK_EQ(a, b)                                                     \
    do {                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                \
        if (a_ != b_)                                                      \
            fail(__FILE__, __LINE__,                                       \
                 std::string(#a " == " #b ": got ") + std::to_string(a_) + \
                     ", expected " + std::to_string(b_));                  \
    } while (0)

static std::atomic<int> ctor_count{0}, dtor_count{0}, bad_dtor{0};

struct Tracker {
    int owner = -1;        // set by the thread that uses it
    std::vector<int> data; // heap memory owned per thread
    std::thread::id tid;
    Tracker() : tid(std::this_thread::get_id()) { ctor_count++; }
    ~Tracker()
    {
        // the destructor runs in the thread that owns the object
        if (tid != std::this_thread::get_id())
            bad_dtor++;
        if (owner >= 0 && (int)data.size() != owner + 1)
            bad_dtor++;
        dtor_count++;
    }
};

static thread_local Tracker tracker;

static int next_serial()
{
    static std::atomic<int> n{0};
    return n++;
}
// dynamic initialisation, run once per thread on first use
static thread_local int serial = next_serial();
static thread_local std::string tl_name = "tl-" + std::to_string(serial);
static thread_local int plain_tl = 5;

// ------------------------------------------------------ thread_local

static void test_thread_local()
{
    const int N = 32;
    int before_c = ctor_count, before_d = dtor_count;
    std::vector<std::thread> ts;
    std::mutex m;
    std::vector<int> serials;
    for (int i = 0; i < N; i++) {
        ts.emplace_back([i, &m, &serials] {
            CHECK_EQ(plain_tl, 5);
            plain_tl = i;
            tracker.owner = i;
            for (int k = 0; k <= i; k++) {
                tracker.data.push_back(k);
                if (k % 4 == 0)
                    std::this_thread::yield();
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            CHECK(tl_name == "tl-" + std::to_string(serial));
            CHECK_EQ(plain_tl, i);
            CHECK_EQ(tracker.owner, i);
            std::lock_guard<std::mutex> g(m);
            serials.push_back(serial);
        });
    }
    // a thread that never touches `tracker` constructs none
    std::thread untouched([] { plain_tl = 9; });
    for (auto &t : ts)
        t.join();
    untouched.join();
    // every thread's destructor has run by the time join returns
    CHECK_EQ(ctor_count - before_c, N);
    CHECK_EQ(dtor_count - before_d, N);
    CHECK_EQ(bad_dtor, 0);
    // serials are distinct
    std::map<int, int> seen;
    for (int s : serials)
        CHECK_EQ(seen[s]++, 0);
    CHECK_EQ(plain_tl, 5); // main's copy untouched
    std::printf("thread_local: %d constructed, %d destroyed in their own "
                "threads\n", ctor_count - before_c, dtor_count - before_d);
}

// ------------------------------------------ mutex + condition_variable

static void test_mutex_cv()
{
    const int PRODUCERS = 4, CONSUMERS = 4, ITEMS = 20000;
    std::mutex m;
    std::condition_variable not_empty, not_full;
    std::vector<long> q;
    const size_t CAP = 16;
    long consumed_sum = 0;
    int consumed = 0, done_producers = 0;

    auto producer = [&](int p) {
        for (int i = 0; i < ITEMS; i++) {
            std::unique_lock<std::mutex> lk(m);
            not_full.wait(lk, [&] { return q.size() < CAP; });
            q.push_back((long)p * ITEMS + i);
            not_empty.notify_one();
        }
        std::lock_guard<std::mutex> g(m);
        done_producers++;
        not_empty.notify_all();
    };
    auto consumer = [&] {
        for (;;) {
            std::unique_lock<std::mutex> lk(m);
            not_empty.wait(lk, [&] {
                return !q.empty() || done_producers == PRODUCERS;
            });
            if (q.empty())
                return;
            consumed_sum += q.back();
            q.pop_back();
            consumed++;
            not_full.notify_one();
        }
    };
    std::vector<std::thread> ts;
    for (int i = 0; i < PRODUCERS; i++)
        ts.emplace_back(producer, i);
    for (int i = 0; i < CONSUMERS; i++)
        ts.emplace_back(consumer);
    for (auto &t : ts)
        t.join();
    long n = (long)PRODUCERS * ITEMS;
    CHECK_EQ(consumed, n);
    CHECK_EQ(consumed_sum, n * (n - 1) / 2);

    // wait_for times out when nobody notifies
    std::unique_lock<std::mutex> lk(m);
    auto t0 = std::chrono::steady_clock::now();
    auto st = not_empty.wait_for(lk, std::chrono::milliseconds(100));
    auto el = std::chrono::steady_clock::now() - t0;
    CHECK(st == std::cv_status::timeout);
    CHECK(el >= std::chrono::milliseconds(100));
    CHECK(el < std::chrono::seconds(5));
    std::printf("mutex/condition_variable: %ld items, sum %ld; wait_for "
                "timed out\n", n, consumed_sum);
}

// --------------------------------------------------------- exceptions

struct Unwound {
    std::atomic<int> *n;
    ~Unwound() { (*n)++; }
};

[[noreturn]] static void thrower(int depth, int id, std::atomic<int> *unw)
{
    Unwound u{unw};
    if (depth == 0) {
        // switch away before throwing: the unwinder must find this stack
        std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        throw std::runtime_error("boom " + std::to_string(id));
    }
    thrower(depth - 1, id, unw);
}

static void test_exceptions()
{
    const int N = 16, ROUNDS = 50;
    std::atomic<int> caught{0}, unwound{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < N; i++) {
        ts.emplace_back([i, &caught, &unwound] {
            for (int r = 0; r < ROUNDS; r++) {
                try {
                    thrower(5, i, &unwound);
                } catch (const std::runtime_error &e) {
                    CHECK(std::string(e.what()) == "boom " + std::to_string(i));
                    std::this_thread::yield();
                    // the in-flight exception is per thread
                    CHECK(std::string(e.what()) == "boom " + std::to_string(i));
                    caught++;
                }
            }
        });
    }
    for (auto &t : ts)
        t.join();
    CHECK_EQ(caught, N * ROUNDS);
    CHECK_EQ(unwound, N * ROUNDS * 6);

    // an exception carried from a thread to main through a promise
    std::promise<int> p;
    std::future<int> f = p.get_future();
    std::thread t([&p] {
        try {
            throw std::out_of_range("from thread");
        } catch (...) {
            p.set_exception(std::current_exception());
        }
    });
    bool got = false;
    try {
        f.get();
    } catch (const std::out_of_range &e) {
        got = std::strcmp(e.what(), "from thread") == 0;
    }
    t.join();
    CHECK(got);

    // std::async with a value and with an exception
    auto a1 = std::async(std::launch::async, [] { return 6 * 7; });
    auto a2 = std::async(std::launch::async, []() -> int {
        throw std::logic_error("async");
    });
    CHECK_EQ(a1.get(), 42);
    bool got2 = false;
    try {
        a2.get();
    } catch (const std::logic_error &e) {
        got2 = std::strcmp(e.what(), "async") == 0;
    }
    CHECK(got2);
    std::printf("exceptions: %d thrown and caught in %d threads; promise "
                "and async carried exceptions to main\n", N * ROUNDS, N);
}

// ------------------------------------------------ main's thread_local

struct MainTl {
    int v = 1;
    ~MainTl() { std::printf("main thread_local destroyed at exit\n"); }
};

int main()
{
    // constructed here, in main only; destroyed by exit() after main returns
    std::setvbuf(stdout, nullptr, _IOLBF, 0); // progress visible if it hangs
    static thread_local MainTl main_tl;
    CHECK_EQ(main_tl.v, 1);
    test_thread_local();
    test_mutex_cv();
    test_exceptions();
    std::printf("cxx_thread_local: done\n");
    return 0;
}
