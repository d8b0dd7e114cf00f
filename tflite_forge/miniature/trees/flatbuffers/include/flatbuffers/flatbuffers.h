// Miniature FlatBuffers read side (tflite-forge fixture): every access is
// bounds-checked against the buffer, so a truncated or hostile file is
// rejected instead of read out of range.
#ifndef FLATBUFFERS_FLATBUFFERS_H_
#define FLATBUFFERS_FLATBUFFERS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace flatbuffers {

class BufferView {
 public:
  BufferView(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool HasIdentifier(const char* identifier) const {
    return size_ >= 8 && std::memcmp(data_ + 4, identifier, 4) == 0;
  }

  // Position of the root table.
  bool Root(size_t* table) const { return Indirect(0, table); }

  // Position of a table field given its vtable offset; *pos = 0 when absent.
  bool Field(size_t table, uint16_t vtable_offset, size_t* pos) const {
    int32_t back = 0;
    if (!Read(table, &back)) return false;
    const int64_t vtable = static_cast<int64_t>(table) - back;
    uint16_t vtable_size = 0;
    if (vtable < 0 || !Read(static_cast<size_t>(vtable), &vtable_size)) return false;
    *pos = 0;
    if (vtable_offset + sizeof(uint16_t) > vtable_size) return true;
    uint16_t field = 0;
    if (!Read(static_cast<size_t>(vtable) + vtable_offset, &field)) return false;
    if (field != 0) *pos = table + field;
    return true;
  }

  // Follows the unsigned offset stored at pos.
  bool Indirect(size_t pos, size_t* target) const {
    uint32_t offset = 0;
    if (!Read(pos, &offset)) return false;
    *target = pos + offset;
    return *target < size_;
  }

  template <typename T>
  bool Read(size_t pos, T* out) const {
    if (pos > size_ || size_ - pos < sizeof(T)) return false;
    std::memcpy(out, data_ + pos, sizeof(T));  // FlatBuffers are little-endian, like our targets
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

}  // namespace flatbuffers

#endif  // FLATBUFFERS_FLATBUFFERS_H_
