// A protobuf message as nlohmann::json for the CLI's --json output: field
// names as in the .proto, 64-bit integers as JSON numbers (the protobuf JSON
// mapping writes them as strings), enums by name, every field present.
// Thread-safe.
#ifndef TPJIT_CLIENT_RPC_PROTO_JSON_H_
#define TPJIT_CLIENT_RPC_PROTO_JSON_H_

#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace tpjit {

nlohmann::json ProtoToJson(const google::protobuf::Message& message);

}  // namespace tpjit

#endif  // TPJIT_CLIENT_RPC_PROTO_JSON_H_
