@failover @api
Feature: An API pod lost under load
  As an operator I need the loss of one API pod to cost clients behind the front as little as
  possible, and the pod to serve again by itself.

  Background:
    Given the lab is up

  Scenario Outline: A <component> pod is killed while clients send requests
    Given a client sends requests to <component> continuously
    When one <component> member is killed
    Then the client's requests to <component> go on within 30 seconds
    And <component> works on every member again within 180 seconds
    And at most <failed> requests to <component> failed

    Examples:
      | component | failed |
      | glance    | 0      |
      | nova-api  | 0      |
