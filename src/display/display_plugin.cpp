// libmaskwatch_display.so: OpenCV's highgui behind a plain C interface, dlopen'ed by
// vision/display.cpp only when `run` shows a window (see display.h for why).
#include <cstddef>
#include <opencv2/core.hpp>
#include <opencv2/highgui.hpp>

extern "C" {

void maskwatch_display_open(const char* title) { cv::namedWindow(title, cv::WINDOW_AUTOSIZE); }

void maskwatch_display_show(const char* title, const unsigned char* bgr, int width, int height, size_t step) {
  cv::imshow(title, cv::Mat(height, width, CV_8UC3, const_cast<unsigned char*>(bgr), step));
}

int maskwatch_display_wait_key(int ms) { return cv::waitKey(ms); }

void maskwatch_display_close() { cv::destroyAllWindows(); }
}
