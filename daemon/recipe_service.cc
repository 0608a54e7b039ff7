#include "daemon/recipe_service.h"

#include "daemon/service.h"

namespace tpjit {
namespace {

const grpc::Status kNoRecipes(grpc::StatusCode::UNAVAILABLE,
                              "this tpjitd keeps no recipes (see its log)");

}  // namespace

grpc::ServerUnaryReactor* RecipeServiceImpl::List(
    grpc::CallbackServerContext* context, const tpjit::v1::ListRecipesRequest*,
    tpjit::v1::ListRecipesResponse* response) {
  auto* reactor = context->DefaultReactor();
  executor_.Post([this, reactor, response] {
    Recipes* recipes = daemon_->recipes();
    if (recipes == nullptr) return reactor->Finish(kNoRecipes);
    *response = recipes->List();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* RecipeServiceImpl::Show(
    grpc::CallbackServerContext* context,
    const tpjit::v1::ShowRecipeRequest* request,
    tpjit::v1::ShowRecipeResponse* response) {
  auto* reactor = context->DefaultReactor();
  executor_.Post([this, reactor, request, response] {
    Recipes* recipes = daemon_->recipes();
    if (recipes == nullptr) return reactor->Finish(kNoRecipes);
    absl::StatusOr<tpjit::v1::ShowRecipeResponse> r = recipes->Show(*request);
    if (r.ok()) *response = *std::move(r);
    reactor->Finish(ToGrpc(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* RecipeServiceImpl::Prefetch(
    grpc::CallbackServerContext* context,
    const tpjit::v1::PrefetchRecipeRequest* request,
    tpjit::v1::PrefetchRecipeResponse* response) {
  auto* reactor = context->DefaultReactor();
  Recipes* recipes = daemon_->recipes();
  if (recipes == nullptr) {
    reactor->Finish(kNoRecipes);
    return reactor;
  }
  recipes->Prefetch(
      *request,
      [reactor, response](absl::StatusOr<tpjit::v1::PrefetchRecipeResponse> r) {
        if (r.ok()) *response = *std::move(r);
        reactor->Finish(ToGrpc(r.status()));
      });
  return reactor;
}

}  // namespace tpjit
