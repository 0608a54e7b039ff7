// The gRPC face of group recipes: tpjit.v1.RecipeService on the callback
// API, over the daemon's Recipes (daemon/recipes.h). Reactions never block:
// every call runs on the service's executor thread, a waiting Prefetch
// finishes from the thread that ends its last compile. UNAVAILABLE when the
// daemon has no recipes. Thread-safe.
#ifndef TPJIT_DAEMON_RECIPE_SERVICE_H_
#define TPJIT_DAEMON_RECIPE_SERVICE_H_

#include "daemon/daemon.h"
#include "daemon/executor.h"
#include "tpjit/v1/recipe.grpc.pb.h"

namespace tpjit {

class RecipeServiceImpl final
    : public tpjit::v1::RecipeService::CallbackService {
 public:
  // REQUIRES: `daemon` outlives the service.
  explicit RecipeServiceImpl(Daemon* daemon) : daemon_(daemon), executor_(1) {}

  grpc::ServerUnaryReactor* List(
      grpc::CallbackServerContext* context,
      const tpjit::v1::ListRecipesRequest* request,
      tpjit::v1::ListRecipesResponse* response) override;
  grpc::ServerUnaryReactor* Show(
      grpc::CallbackServerContext* context,
      const tpjit::v1::ShowRecipeRequest* request,
      tpjit::v1::ShowRecipeResponse* response) override;
  grpc::ServerUnaryReactor* Prefetch(
      grpc::CallbackServerContext* context,
      const tpjit::v1::PrefetchRecipeRequest* request,
      tpjit::v1::PrefetchRecipeResponse* response) override;

 private:
  Daemon* daemon_;
  Executor executor_;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_RECIPE_SERVICE_H_
