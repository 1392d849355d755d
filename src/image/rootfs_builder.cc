#include "image/rootfs_builder.h"

#include <sys/stat.h>

#include <unordered_map>

#include "image/ext4_writer.h"
#include "image/layer_reader.h"

namespace nfc::image {
namespace {

// Regular files whose data a layer supplies, by entry index.
using DataIndex = std::vector<std::unordered_map<uint64_t, Inode*>>;

void CollectData(Dentry* d, DataIndex* index) {
  Inode* ino = d->inode.get();
  if (S_ISREG(ino->mode) && ino->size > 0 && ino->layer >= 0) (*index)[ino->layer][ino->entry] = ino;
  for (auto& [_, c] : d->children) CollectData(c.get(), index);
}

Result<std::unique_ptr<LayerReader>> OpenLayer(const LayerFile& l) {
  if (l.bytes) return LayerReader::OpenMemory(*l.bytes, l.name);
  return LayerReader::Open(l.path, l.name);
}

}  // namespace

Result<RootfsStats> BuildRootfs(const std::vector<LayerFile>& layers, const std::string& out_path,
                                const std::string& label, const BuildProgressFn& progress) {
  NFC_ASSIGN_OR_RETURN(
      TreeStats tree,
      BuildRootfsWith(
          layers, [&](const Ext4Geometry& g) { return Ext4Writer::Create(out_path, g, label); }, progress));
  RootfsStats out;
  out.tree = tree;
  struct stat st {};
  if (::stat(out_path.c_str(), &st) == 0) out.image_bytes = static_cast<uint64_t>(st.st_size);
  return out;
}

Result<TreeStats> BuildRootfsWith(const std::vector<LayerFile>& layers, const MakeWriterFn& make_writer,
                                  const BuildProgressFn& progress) {
  uint64_t total = 0;
  for (const auto& l : layers) total += 2 * l.size;
  uint64_t done_before = 0;
  auto report = [&](uint64_t consumed) {
    if (progress) progress(std::min(total, done_before + consumed), total);
  };

  LayerTree tree;
  for (size_t i = 0; i < layers.size(); ++i) {
    NFC_ASSIGN_OR_RETURN(auto reader, OpenLayer(layers[i]));
    TarEntry e;
    for (uint64_t index = 0;; ++index) {
      NFC_ASSIGN_OR_RETURN(bool more, reader->Next(&e));
      if (!more) break;
      NFC_RETURN_IF_ERROR_CTX(tree.Apply(static_cast<int>(i), index, e), "layer " + layers[i].name);
      if ((index & 1023) == 0) report(reader->BytesConsumed());
    }
    done_before += layers[i].size;
  }
  TreeStats stats = tree.Finalize();
  Ext4Geometry geometry = EstimateGeometry(tree.root(), stats);
  NFC_ASSIGN_OR_RETURN(auto writer, make_writer(geometry));
  NFC_RETURN_IF_ERROR(writer->CreateTree(tree.root()));

  DataIndex index(layers.size());
  CollectData(tree.root(), &index);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (index[i].empty()) {
      done_before += layers[i].size;
      continue;
    }
    NFC_ASSIGN_OR_RETURN(auto reader, OpenLayer(layers[i]));
    TarEntry e;
    size_t remaining = index[i].size();
    for (uint64_t n = 0; remaining > 0; ++n) {
      NFC_ASSIGN_OR_RETURN(bool more, reader->Next(&e));
      if (!more) {
        return Error::DataLoss("layer " + layers[i].name +
                               " ended early on the second read (changed on disk?)");
      }
      auto it = index[i].find(n);
      if (it == index[i].end()) continue;
      NFC_RETURN_IF_ERROR_CTX(writer->WriteFileData(it->second, reader.get()),
                              "layer " + layers[i].name + ": write " + e.path);
      --remaining;
      if ((n & 255) == 0) report(reader->BytesConsumed());
    }
    done_before += layers[i].size;
  }
  NFC_RETURN_IF_ERROR(writer->Finish());
  report(0);
  return stats;
}

}  // namespace nfc::image
