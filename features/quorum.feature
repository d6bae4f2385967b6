Feature: Quorum components keep one healthy, agreeing membership
  As an operator I need etcd, Galera and RabbitMQ to run every member healthy and agree on
  who the members are, so that losing one of them later costs nothing.

  Background:
    Given the lab is up

  @quorum
  Scenario: Every member of etcd, Galera and RabbitMQ is healthy and agrees on membership
    Then every member of galera is healthy and agrees on the membership within 300 seconds
    And every member of etcd is healthy and agrees on the membership within 120 seconds
    And every member of rabbitmq is healthy and agrees on the membership within 300 seconds
